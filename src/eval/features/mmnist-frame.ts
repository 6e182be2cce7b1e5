/**
 * The driftlab Moving-MNIST frame encoder: a small CNN whose 128-d penultimate activations (after
 * ReLU) define the "Frechet frame distance" of 32x32 Moving-MNIST frames (a 64x64 canvas
 * average-pooled 2x2, in [0,1]; video-input.ts toEncoderFrames converts other sizes).
 *
 *   x [B,32,32,1] in [0,1] -> (x - 0.05) / 0.2
 *   conv3x3  1->16 s1 +ReLU [B,32,32,16]     conv3x3 16->32 s2 +ReLU [B,16,16,32]
 *   conv3x3 32->64 s2 +ReLU [B,8,8,64]       conv3x3 64->64 s2 +ReLU [B,4,4,64]
 *   [flatten [B,1024], spatial max [B,64]] -> fc1 128 +ReLU (= the features) -> head 19 (linear)
 *
 * The spatial max gives fc1 a translation-invariant view of which strokes are present (without
 * it, digit recognition at arbitrary positions did not start within 600 steps); the flatten
 * keeps where they are.
 *
 * Supervised target (TargetSpec below; trained by eval/train-video-features.ts on frames of
 * clips with 1, 2 or 3 digits from the 'train' digit split):
 *   - presence: 10 logits, sigmoid + binary cross-entropy against "digit class k is in the
 *     frame" (multi-hot);
 *   - count: 3 logits, softmax cross-entropy over "1, 2 or 3 digits";
 *   - positions: 3 slots x (cx, cy), the digits' centres (top-left + 14) in canvas pixels / 64,
 *     so in [0.22, 0.78]; digits ordered by label, then by centre x; squared error on the slots
 *     that hold a digit (empty slots are masked out), weighted by TargetSpec.regWeight.
 *
 * This file also holds what both Moving-MNIST encoders share (mmnist-clip.ts imports it): the
 * network class over a NetDef, the target layout, parameter init, safetensors save / load.
 * Checkpoint folder: config.json (net, arch, target, data, recipe, held-out results) +
 * model.safetensors (F32, tfjs layouts: conv [KH,KW,Cin,Cout], linear [in,out]).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { ParamStore, conv, linear } from '../../diffusion/layers.js';
import { readFileChecked, writeFileAtomic } from '../../io/atomic.js';
import { NamedTensor, decodeSafetensors, encodeSafetensors } from '../../io/safetensors.js';
import { DriftlabError } from '../../util/errors.js';
import { initHeNormal } from './mnist-classifier.js';
import type { FeatureNet, FeatureNetEntry } from './index.js';

export const MMNIST_FEATURES_FORMAT = 'driftlab-mmnist-features-1';
export const FRAME_FID_NAME = 'Frechet frame distance (driftlab Moving-MNIST frame encoder; not comparable with Inception FID)';
/** package root: four levels above dist/src/eval/features */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
export const DEFAULT_FRAME_DIR = path.join(PACKAGE_ROOT, 'checkpoints', 'mmnist-frame');

export type MmnistNetName = 'mmnist-frame' | 'mmnist-clip';

/** What the head regresses; the same layout for both encoders (see the file headers). */
export interface TargetSpec {
  /** multi-hot digit classes present (sigmoid BCE) */
  classes: number;
  /** digit counts the count head chooses between (softmax CE) */
  counts: number[];
  /** regression slots (one per digit, up to max(counts)), ordered by label then x */
  slots: number;
  /** values per slot, e.g. ['cx', 'cy'] or ['cx@0', ..., 'vx@15', ...] */
  perSlot: string[];
  /** positions: canvas pixels / positionScale; velocities: pixels per frame / velocityScale */
  positionScale: number;
  velocityScale: number;
  /** weight of the masked mean squared error against the two cross-entropies */
  regWeight: number;
  description: string;
}

export function headSize(t: TargetSpec): number {
  return t.classes + t.counts.length + t.slots * t.perSlot.length;
}

export interface MmnistFeatureConfig {
  format: string;
  net: MmnistNetName;
  arch: Record<string, any>;
  target: TargetSpec;
  data?: Record<string, unknown>;
  training?: Record<string, unknown>;
  results?: Record<string, unknown>;
}

export interface ParamSpec {
  name: string;
  shape: number[];
  fanIn: number;
}

export interface Heads {
  features: tf.Tensor2D;
  presence: tf.Tensor2D;
  count: tf.Tensor2D;
  reg: tf.Tensor2D;
}

/** Everything that differs between the two encoders. */
export interface NetDef {
  name: MmnistNetName;
  fidName: string;
  defaultDir: string;
  /** samples per forward pass in features() */
  batch: number;
  inputShape(arch: any): number[];
  dim(arch: any): number;
  specs(arch: any, target: TargetSpec): ParamSpec[];
  /** x: [B, ...inputShape] -> features [B,D] and the head's raw outputs [B, headSize] */
  forward(P: ParamStore, arch: any, x: tf.Tensor): { features: tf.Tensor2D; head: tf.Tensor2D };
}

export function convSpecs(prefix: string, cin: number, channels: number[]): ParamSpec[] {
  const specs: ParamSpec[] = [];
  channels.forEach((c, i) => {
    const fanIn = 9 * cin;
    specs.push({ name: `${prefix}${i + 1}.weight`, shape: [3, 3, cin, c], fanIn }, { name: `${prefix}${i + 1}.bias`, shape: [c], fanIn });
    cin = c;
  });
  return specs;
}

export function linearSpecs(name: string, fin: number, fout: number): ParamSpec[] {
  return [{ name: `${name}.weight`, shape: [fin, fout], fanIn: fin }, { name: `${name}.bias`, shape: [fout], fanIn: fin }];
}

/** Spatial side after 3x3 pad-1 convs: s -> floor((s - 1) / stride) + 1. */
export function sideAfter(size: number, strides: number[]): number {
  return strides.reduce((s, st) => Math.floor((s - 1) / st) + 1, size);
}

/** Normalise, then ReLU convs with the given strides: [B,S,S,1] -> [B,s,s,C]. */
export function convStack(P: ParamStore, prefix: string, x: tf.Tensor4D, strides: number[], mean: number, std: number): tf.Tensor4D {
  let h = tf.div(tf.sub(x, mean), std) as tf.Tensor4D;
  strides.forEach((st, i) => { h = tf.relu(conv(P, `${prefix}${i + 1}`, h, st)); });
  return h;
}

/** [B,s,s,C] -> [B, s*s*C + C]: the map flattened (where things are) and its spatial max per channel (what is there, anywhere). */
export function flattenAndMax(h: tf.Tensor4D): tf.Tensor2D {
  const B = h.shape[0];
  return tf.concat([h.reshape([B, -1]), tf.max(h.reshape([B, -1, h.shape[3]]), 1)], 1) as tf.Tensor2D;
}

export interface FrameArch {
  inputSize: number;
  channels: number[];
  strides: number[];
  hidden: number;
  mean: number;
  std: number;
}

export const DEFAULT_FRAME_ARCH: FrameArch = { inputSize: 32, channels: [16, 32, 64, 64], strides: [1, 2, 2, 2], hidden: 128, mean: 0.05, std: 0.2 };

export const FRAME_TARGET: TargetSpec = {
  classes: 10, counts: [1, 2, 3], slots: 3, perSlot: ['cx', 'cy'], positionScale: 64, velocityScale: 4, regWeight: 10,
  description: 'presence: multi-hot of the digit classes in the frame (sigmoid BCE); count: 1/2/3 digits (softmax CE); '
    + 'per digit (ordered by label, then centre x; slots beyond the digit count masked): centre (top-left + 14) in 64x64 canvas px / 64; '
    + 'loss = BCE + CE + regWeight * masked MSE',
};

export const frameNetDef: NetDef = {
  name: 'mmnist-frame',
  fidName: FRAME_FID_NAME,
  defaultDir: DEFAULT_FRAME_DIR,
  batch: 256,
  inputShape: (a: FrameArch) => [a.inputSize, a.inputSize, 1],
  dim: (a: FrameArch) => a.hidden,
  specs(a: FrameArch, t: TargetSpec) {
    const side = sideAfter(a.inputSize, a.strides);
    const C = a.channels.at(-1)!;
    return [...convSpecs('conv', 1, a.channels), ...linearSpecs('fc1', side * side * C + C, a.hidden), ...linearSpecs('head', a.hidden, headSize(t))];
  },
  forward(P, a: FrameArch, x) {
    const h = convStack(P, 'conv', x as tf.Tensor4D, a.strides, a.mean, a.std);
    const features = tf.relu(linear(P, 'fc1', flattenAndMax(h))) as tf.Tensor2D;
    return { features, head: linear(P, 'head', features) as tf.Tensor2D };
  },
};

/** He-normal weights, zero biases (mnist-classifier.ts initHeNormal). */
export function initParams(specs: ParamSpec[], seed: number, tag: string): Map<string, Float32Array> {
  return initHeNormal(specs, seed, tag);
}

export interface HeadOutputs {
  features: Float32Array;
  /** sigmoid probabilities [N,classes] */
  presence: Float32Array;
  /** softmax probabilities [N,counts] */
  count: Float32Array;
  /** regression [N, slots*perSlot] in scaled units */
  reg: Float32Array;
}

export class MmnistFeatureNet implements FeatureNet {
  readonly name: string;
  readonly fidName: string;
  readonly inputShape: readonly number[];
  readonly dim: number;
  readonly specs: ParamSpec[];
  readonly vars = new Map<string, tf.Variable>();
  private readonly sampleSize: number;
  private static nextId = 0;

  constructor(readonly def: NetDef, readonly config: MmnistFeatureConfig, init: Map<string, Float32Array>) {
    if (config.net !== def.name) throw new DriftlabError(`config is for '${config.net}', not '${def.name}'`);
    this.name = def.name;
    this.fidName = def.fidName;
    this.inputShape = def.inputShape(config.arch);
    this.dim = def.dim(config.arch);
    this.sampleSize = this.inputShape.reduce((p, q) => p * q, 1);
    this.specs = def.specs(config.arch, config.target);
    const id = MmnistFeatureNet.nextId++;
    for (const s of this.specs) {
      const v = init.get(s.name);
      if (!v) throw new Error(`no value for ${def.name} parameter ${s.name}`);
      this.vars.set(s.name, tf.variable(tf.tensor(v, s.shape, 'float32'), true, `${def.name}${id}/${s.name}`));
    }
  }

  /** x: [B, ...inputShape] tensor in [0,1] -> features and the split head */
  forward(x: tf.Tensor): Heads {
    const { features, head } = this.def.forward(this.vars as Map<string, tf.Tensor>, this.config.arch, x);
    const t = this.config.target;
    const K = t.classes, C = t.counts.length, R = t.slots * t.perSlot.length;
    const [presence, count, reg] = tf.split(head, [K, C, R], 1) as tf.Tensor2D[];
    return { features, presence, count, reg };
  }

  private check(x: Float32Array, n: number): void {
    if (!Number.isInteger(n) || n < 0 || x.length !== n * this.sampleSize) {
      throw new DriftlabError(`${this.name} takes [N,${this.inputShape.join(',')}] inputs in [0,1]; got ${x.length} values for N=${n}`);
    }
  }

  /** Features and decoded heads of x: [N, ...inputShape], in batches of def.batch. */
  run(x: Float32Array, n: number): HeadOutputs {
    this.check(x, n);
    const t = this.config.target;
    const K = t.classes, C = t.counts.length, R = t.slots * t.perSlot.length;
    const out: HeadOutputs = {
      features: new Float32Array(n * this.dim), presence: new Float32Array(n * K), count: new Float32Array(n * C), reg: new Float32Array(n * R),
    };
    this.batches(x, n, (xt, s) => {
      const h = this.forward(xt);
      out.features.set(h.features.dataSync() as Float32Array, s * this.dim);
      out.presence.set(tf.sigmoid(h.presence).dataSync() as Float32Array, s * K);
      out.count.set(tf.softmax(h.count).dataSync() as Float32Array, s * C);
      out.reg.set(h.reg.dataSync() as Float32Array, s * R);
    });
    return out;
  }

  features(x: Float32Array, n: number): Float32Array {
    this.check(x, n);
    const f = new Float32Array(n * this.dim);
    this.batches(x, n, (xt, s) => f.set(this.def.forward(this.vars as Map<string, tf.Tensor>, this.config.arch, xt).features.dataSync() as Float32Array, s * this.dim));
    return f;
  }

  private batches(x: Float32Array, n: number, fn: (xt: tf.Tensor, start: number) => void): void {
    const px = this.sampleSize;
    for (let s = 0; s < n; s += this.def.batch) {
      const B = Math.min(this.def.batch, n - s);
      tf.tidy(() => fn(tf.tensor(x.subarray(s * px, (s + B) * px), [B, ...this.inputShape], 'float32'), s));
    }
  }

  getNamed(): Map<string, Float32Array> {
    const m = new Map<string, Float32Array>();
    for (const s of this.specs) m.set(s.name, (this.vars.get(s.name)!.dataSync() as Float32Array).slice());
    return m;
  }

  /** number of trainable parameters */
  get size(): number {
    return this.specs.reduce((p, s) => p + s.shape.reduce((a, b) => a * b, 1), 0);
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}

export async function saveMmnistNet(dir: string, config: MmnistFeatureConfig, params: Map<string, Float32Array>, def: NetDef): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const tensors: Record<string, NamedTensor> = {};
  for (const s of def.specs(config.arch, config.target)) tensors[s.name] = { dtype: 'F32', shape: s.shape, data: params.get(s.name)! };
  await writeFileAtomic(path.join(dir, 'model.safetensors'), encodeSafetensors(tensors, { format: MMNIST_FEATURES_FORMAT, net: def.name, layout: 'tfjs: conv [KH,KW,Cin,Cout], linear [in,out]' }));
  await writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
}

export async function loadMmnistNet(def: NetDef, dir = def.defaultDir): Promise<MmnistFeatureNet> {
  const cfgPath = path.join(dir, 'config.json');
  if (!fs.existsSync(cfgPath)) {
    throw new DriftlabError(`no ${def.name} encoder in ${dir} (config.json missing); train one with 'driftlab eval train-features --net ${def.name} --out ${dir}'`);
  }
  let config: MmnistFeatureConfig;
  try {
    config = JSON.parse(Buffer.from(await readFileChecked(cfgPath, `${def.name} config`)).toString('utf8'));
  } catch (e) {
    if (e instanceof DriftlabError) throw e;
    throw new DriftlabError(`${cfgPath} is not valid JSON: ${(e as Error).message}`);
  }
  if (config?.format !== MMNIST_FEATURES_FORMAT || config.net !== def.name || !config.arch || !config.target) {
    throw new DriftlabError(`${cfgPath} is not a driftlab ${def.name} config (format ${JSON.stringify(config?.format)}, net ${JSON.stringify(config?.net)})`);
  }
  const file = path.join(dir, 'model.safetensors');
  const { tensors } = decodeSafetensors(await readFileChecked(file, `${def.name} weights`), file);
  const params = new Map<string, Float32Array>();
  for (const s of def.specs(config.arch, config.target)) {
    const t = tensors[s.name];
    if (!t || t.dtype !== 'F32' || t.shape.join(',') !== s.shape.join(',')) {
      throw new DriftlabError(`${file} does not match its config.json: ${s.name} should be F32 [${s.shape}], found ${t ? `${t.dtype} [${t.shape}]` : 'nothing'}`);
    }
    params.set(s.name, t.data as Float32Array);
  }
  return new MmnistFeatureNet(def, config, params);
}

export const loadFrameEncoder = (dir?: string) => loadMmnistNet(frameNetDef, dir);

export const mmnistFrameEntry: FeatureNetEntry = {
  name: 'mmnist-frame',
  describe: '128-d features of the driftlab Moving-MNIST frame encoder (32x32 frames in [0,1]: digit classes, count, positions)',
  defaultCheckpoint: DEFAULT_FRAME_DIR,
  load: (dir?: string) => loadFrameEncoder(dir),
};
