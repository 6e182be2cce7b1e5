/**
 * Feature networks for Frechet distances, registered by name. Each network is one file in this
 * folder exporting a FeatureNetEntry; adding one (the Moving-MNIST frame encoder, the 16-frame
 * clip encoder) means writing that file and adding it to ENTRIES below.
 *
 * Inputs are always float32 in [0,1], NHWC (clips: [N,T,H,W,C]); features are float32 [N,D].
 * Moving-MNIST frames of other sizes or ranges: video-input.ts toEncoderFrames.
 */
import { DriftlabError } from '../../util/errors.js';
import { mmnistClipEntry } from './mmnist-clip.js';
import { mmnistFrameEntry } from './mmnist-frame.js';
import { mnistClassifierEntry } from './mnist-classifier.js';

export interface FeatureNet {
  /** registry name, e.g. 'mnist-classifier' */
  readonly name: string;
  /** per-sample input shape without the batch axis, e.g. [28,28,1] */
  readonly inputShape: readonly number[];
  /** feature dimension D */
  readonly dim: number;
  /** how a Frechet distance on these features must be named wherever it is printed */
  readonly fidName: string;
  /** x: [N, ...inputShape] in [0,1] -> [N,D] */
  features(x: Float32Array, n: number): Float32Array;
  dispose(): void;
}

/** A feature network that is also a classifier (for accuracy / confidence of class-conditional samples). */
export interface ClassifierNet extends FeatureNet {
  readonly numClasses: number;
  /** x: [N, ...inputShape] in [0,1] -> features [N,D] and class probabilities [N,K] in one pass */
  run(x: Float32Array, n: number): { features: Float32Array; probs: Float32Array };
}

export interface FeatureNetEntry {
  name: string;
  describe: string;
  /** checkpoint folder shipped in checkpoints/ */
  defaultCheckpoint: string;
  load(dir?: string): Promise<FeatureNet>;
}

const ENTRIES: FeatureNetEntry[] = [mnistClassifierEntry, mmnistFrameEntry, mmnistClipEntry];

export function featureNetNames(): string[] {
  return ENTRIES.map((e) => e.name);
}

export function getFeatureNetEntry(name: string): FeatureNetEntry {
  const e = ENTRIES.find((x) => x.name === name);
  if (!e) throw new DriftlabError(`unknown feature network '${name}'; choose one of ${featureNetNames().join(', ')}`);
  return e;
}

export async function loadFeatureNet(name: string, dir?: string): Promise<FeatureNet> {
  return getFeatureNetEntry(name).load(dir);
}

export function isClassifier(n: FeatureNet): n is ClassifierNet {
  return typeof (n as ClassifierNet).run === 'function';
}
