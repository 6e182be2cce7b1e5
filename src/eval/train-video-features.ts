/**
 * Training of the Moving-MNIST feature networks (features/mmnist-frame.ts, features/mmnist-clip.ts)
 * on clips generated on the fly, never repeated: training sample k is clip k of
 * MovingMnist({digits: DIGIT_CYCLE[k % 4], split: 'train'}, seed) -- digit images from the
 * simulator's 'train' digit split, 64x64 canvas, speed 3.6 px/frame, pooled 2x2 to 32x32 in [0,1].
 * The frame encoder sees frame 0 of each clip (digit positions are uniform there), the clip
 * encoder frames 0..15. Held-out samples are clips 0..n-1 of the same generator with digit images
 * from the 'test' split (never trained on) and seed HELDOUT_SEED.
 *
 * Loss: BCE (presence, summed over the 10 classes) + CE (count) + regWeight * masked MSE (positions, velocities), AdamW,
 * linear warm-up then cosine decay. Writes DIR/config.json + DIR/model.safetensors and
 * DIR/train-log.jsonl (one line per step, an 'eval' line every evalEvery steps).
 *
 * initFrame (CLI --init-frame DIR, clip encoder only): start the clip net's per-frame stack
 * (conv1..conv4 and its per-frame fc) from a trained frame encoder's conv1..conv4 and fc1
 * (features/mmnist-clip.ts initClipFromFrame; the per-frame fc rescaled to unit-RMS output on the
 * frames of the first training batch); everything else keeps the seeded random init and
 * nothing is frozen. config.json records it under training.initFrame.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadBundledMnist, MnistData } from '../../datasets/mnist/index.js';
import { DigitTruth, MovingMnist } from '../../datasets/moving-mnist/index.js';
import { AdamW, DEFAULT_ADAMW } from '../diffusion/optim.js';
import { DriftlabError } from '../util/errors.js';
import { Progress } from '../util/progress.js';
import { CLIP_TARGET, ClipArch, DEFAULT_CLIP_ARCH, FrameInitRecord, clipNetDef, initClipFromFrame } from './features/mmnist-clip.js';
import {
  DEFAULT_FRAME_ARCH, FRAME_TARGET, HeadOutputs, Heads, MMNIST_FEATURES_FORMAT, MmnistFeatureConfig, MmnistFeatureNet, MmnistNetName,
  NetDef, TargetSpec, frameNetDef, initParams, saveMmnistNet,
} from './features/mmnist-frame.js';
import { toEncoderFrames } from './features/video-input.js';

/** digit count of sample k: DIGIT_CYCLE[k % 4] (half the samples have 2 digits, as in the video data) */
export const DIGIT_CYCLE = [2, 1, 2, 3];
export const HELDOUT_SEED = 1000003;
const CANVAS = 64, POOL = 2, DIGIT_HALF = 14;

export const NET_DEFS: Record<MmnistNetName, { def: NetDef; arch: Record<string, any>; target: TargetSpec; frames: number }> = {
  'mmnist-frame': { def: frameNetDef, arch: DEFAULT_FRAME_ARCH, target: FRAME_TARGET, frames: 1 },
  'mmnist-clip': { def: clipNetDef, arch: DEFAULT_CLIP_ARCH, target: CLIP_TARGET, frames: DEFAULT_CLIP_ARCH.frames },
};

export interface SampleBatch {
  n: number;
  /** [n, ...inputShape] in [0,1] */
  x: Float32Array;
  presence: Float32Array;
  count: Float32Array;
  reg: Float32Array;
  mask: Float32Array;
}

/** Digits ordered by label, then centre x in frame 0. */
function ordered(truth: DigitTruth[]): DigitTruth[] {
  return truth.slice().sort((a, b) => a.label - b.label || a.positions[0][0] - b.positions[0][0]);
}

/** Value of slot name 'cx' | 'cy' | 'vx' | 'vy' (+ optional '@t', default frame 0) for one digit. */
function slotValue(d: DigitTruth, name: string, t: TargetSpec): number {
  const [kind, at] = name.split('@');
  const f = at === undefined ? 0 : Number(at);
  const axis = kind[1] === 'x' ? 0 : 1;
  if (kind[0] === 'c') return (d.positions[f][axis] + DIGIT_HALF) / t.positionScale;
  if (kind[0] === 'v') return d.velocities[f][axis] / t.velocityScale;
  throw new Error(`unknown target value ${name}`);
}

/** Samples [first, first+n) of a split: frames pooled to [0,1] and their targets. */
export class VideoFeatureData {
  private readonly sources = new Map<number, MovingMnist>();
  constructor(readonly net: MmnistNetName, readonly split: 'train' | 'test', readonly seed: number, src: MnistData = loadBundledMnist()) {
    for (const d of new Set(DIGIT_CYCLE)) this.sources.set(d, new MovingMnist({ digits: d, split }, seed, src));
  }

  batch(first: number, n: number): SampleBatch {
    const { target: t, frames: F } = NET_DEFS[this.net];
    const K = t.classes, C = t.counts.length, V = t.perSlot.length, R = t.slots * V;
    const px = 32 * 32;
    const b: SampleBatch = {
      n, x: new Float32Array(n * F * px), presence: new Float32Array(n * K), count: new Float32Array(n * C),
      reg: new Float32Array(n * R), mask: new Float32Array(n * R),
    };
    const canvas = new Uint8Array(F * CANVAS * CANVAS);
    for (let i = 0; i < n; i++) {
      const k = first + i;
      const clip = this.sources.get(DIGIT_CYCLE[k % DIGIT_CYCLE.length])!.clip(k);
      for (let f = 0; f < F; f++) clip.next(canvas.subarray(f * CANVAS * CANVAS, (f + 1) * CANVAS * CANVAS));
      b.x.set(toEncoderFrames(canvas, F, CANVAS, 'u8'), i * F * px);
      const digits = ordered(clip.truth);
      for (const d of digits) b.presence[i * K + d.label] = 1;
      b.count[i * C + t.counts.indexOf(digits.length)] = 1;
      digits.forEach((d, j) => t.perSlot.forEach((name, v) => {
        b.reg[i * R + j * V + v] = slotValue(d, name, t);
        b.mask[i * R + j * V + v] = 1;
      }));
    }
    return b;
  }
}

/** BCE (summed over classes) + CE + regWeight * masked MSE (mean over valid values), each averaged over the batch; and the three parts. */
export function videoFeatureLoss(h: Heads, b: SampleBatch, t: TargetSpec): { total: tf.Scalar; parts: tf.Tensor1D } {
  const n = b.n, R = t.slots * t.perSlot.length;
  const z = h.presence, y = tf.tensor2d(b.presence, [n, t.classes]);
  const bce = tf.mean(tf.sum(tf.add(tf.sub(tf.relu(z), tf.mul(z, y)), tf.log1p(tf.exp(tf.neg(tf.abs(z))))), 1));
  const ce = tf.neg(tf.mean(tf.sum(tf.mul(tf.tensor2d(b.count, [n, t.counts.length]), tf.logSoftmax(h.count)), 1)));
  const maskSum = b.mask.reduce((s, v) => s + v, 0);
  const diff = tf.sub(h.reg, tf.tensor2d(b.reg, [n, R]));
  const mse = tf.div(tf.sum(tf.mul(tf.tensor2d(b.mask, [n, R]), tf.square(diff))), Math.max(1, maskSum));
  const total = tf.add(tf.add(bce, ce), tf.mul(mse, t.regWeight)) as tf.Scalar;
  return { total, parts: tf.stack([bce, ce, mse]) as tf.Tensor1D };
}

export interface VideoFeatureScores {
  n: number;
  /** fraction of (sample, class) presence bits right at threshold 0.5 */
  presenceBitAccuracy: number;
  /** fraction of samples whose whole set of digit classes is right */
  presenceSetAccuracy: number;
  /** micro F1 of the presence bits */
  presenceF1: number;
  countAccuracy: number;
  /** mean distance of predicted and true digit centres, 64x64 canvas pixels (valid slots, all regressed frames) */
  positionErrorPx: number;
  /** mean distance of predicted and true velocities, canvas pixels per frame (clip encoder only) */
  velocityErrorPx: number | null;
}

export function scoreOutputs(o: HeadOutputs, b: SampleBatch, t: TargetSpec): VideoFeatureScores {
  const { n } = b, K = t.classes, C = t.counts.length, V = t.perSlot.length, R = t.slots * V;
  let bits = 0, sets = 0, tp = 0, fp = 0, fn = 0, counts = 0;
  const err = { c: [0, 0], v: [0, 0] } as Record<string, number[]>;
  for (let i = 0; i < n; i++) {
    let all = true;
    for (let k = 0; k < K; k++) {
      const p = o.presence[i * K + k] > 0.5, y = b.presence[i * K + k] === 1;
      if (p === y) bits++; else all = false;
      if (p && y) tp++; else if (p) fp++; else if (y) fn++;
    }
    if (all) sets++;
    let best = 0;
    for (let c = 1; c < C; c++) if (o.count[i * C + c] > o.count[i * C + best]) best = c;
    if (b.count[i * C + best] === 1) counts++;
    for (let j = 0; j < t.slots; j++) {
      const base = i * R + j * V;
      if (!b.mask[base]) continue;
      t.perSlot.forEach((name, v) => {
        if (name[1] !== 'x') return; // pair each x with the y that follows it
        const scale = name[0] === 'c' ? t.positionScale : t.velocityScale;
        const d = Math.hypot(o.reg[base + v] - b.reg[base + v], o.reg[base + v + 1] - b.reg[base + v + 1]) * scale;
        err[name[0]][0] += d;
        err[name[0]][1]++;
      });
    }
  }
  return {
    n, presenceBitAccuracy: bits / (n * K), presenceSetAccuracy: sets / n, presenceF1: (2 * tp) / Math.max(1, 2 * tp + fp + fn),
    countAccuracy: counts / n, positionErrorPx: err.c[0] / Math.max(1, err.c[1]), velocityErrorPx: err.v[1] ? err.v[0] / err.v[1] : null,
  };
}

/** Score a net on held-out samples [first, first+n) (test digit split, HELDOUT_SEED). */
export function evaluateVideoFeatureNet(net: MmnistFeatureNet, n: number, first = 0, data?: VideoFeatureData): VideoFeatureScores {
  const d = data ?? new VideoFeatureData(net.def.name, 'test', HELDOUT_SEED);
  const b = d.batch(first, n);
  return scoreOutputs(net.run(b.x, n), b, net.config.target);
}

export interface VideoFeatureTrainOptions {
  net: MmnistNetName;
  out: string;
  seed: number;
  steps: number;
  batchSize: number;
  lr: number;
  weightDecay?: number;
  warmup?: number;
  /** held-out samples for the final score */
  heldout?: number;
  /** score evalN held-out samples every evalEvery steps (0: only at the end) */
  evalEvery?: number;
  evalN?: number;
  overwrite?: boolean;
  quiet?: boolean;
  /** mmnist-clip only: a frame encoder folder whose per-frame stack initialises the clip net's */
  initFrame?: string;
  /** recorded in config.json */
  command?: string;
  backendLine?: string;
}

export interface VideoFeatureTrainResult {
  steps: number;
  seconds: number;
  lastLoss: number;
  heldout: VideoFeatureScores;
  parameters: number;
  /** set when initFrame was given */
  initFrame?: FrameInitRecord;
}

const HELDOUT_DEFAULT: Record<MmnistNetName, number> = { 'mmnist-frame': 2000, 'mmnist-clip': 500 };

export async function trainVideoFeatureNet(o: VideoFeatureTrainOptions): Promise<VideoFeatureTrainResult> {
  const entry = NET_DEFS[o.net];
  if (!entry) throw new DriftlabError(`--net must be mmnist-frame or mmnist-clip, got ${o.net}`);
  const weightDecay = o.weightDecay ?? 1e-4, warmup = o.warmup ?? Math.min(200, Math.floor(o.steps / 10));
  const heldoutN = o.heldout ?? HELDOUT_DEFAULT[o.net], evalEvery = o.evalEvery ?? 0, evalN = o.evalN ?? 256;
  for (const [k, v] of [['steps', o.steps], ['batch-size', o.batchSize], ['heldout', heldoutN]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new DriftlabError(`--${k} must be a positive integer, got ${v}`);
  }
  if (!(o.lr > 0)) throw new DriftlabError(`--lr must be > 0, got ${o.lr}`);
  if (fs.existsSync(path.join(o.out, 'model.safetensors')) && !o.overwrite) {
    throw new DriftlabError(`${o.out} already holds a feature network; pass --overwrite to replace it or choose another --out`);
  }
  if (o.initFrame !== undefined && o.net !== 'mmnist-clip') throw new DriftlabError(`--init-frame only applies to --net mmnist-clip, not ${o.net}`);
  const { def, target } = entry;
  const config: MmnistFeatureConfig = { format: MMNIST_FEATURES_FORMAT, net: o.net, arch: structuredClone(entry.arch), target: structuredClone(target) };
  const specs = def.specs(config.arch, target);
  const init = initParams(specs, o.seed, o.net);
  // calibration frames for initFrame: the frames of the first training batch (see initClipFromFrame)
  const frameInit = o.initFrame === undefined ? undefined : await initClipFromFrame(config.arch as ClipArch, specs, init, o.initFrame,
    { x: new VideoFeatureData(o.net, 'train', o.seed).batch(0, o.batchSize).x, n: o.batchSize * entry.frames });
  const net = new MmnistFeatureNet(def, config, init);
  const sizes = specs.map((s) => s.shape.reduce((p, q) => p * q, 1));
  const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((p, q) => p + q, 0));
  const P = sizes.reduce((p, q) => p + q, 0);
  const params = new Float32Array(P);
  specs.forEach((s, i) => params.set(net.vars.get(s.name)!.dataSync() as Float32Array, offsets[i]));
  const adam = new AdamW(P, { ...DEFAULT_ADAMW, lr: o.lr, weightDecay });
  const grad = new Float32Array(P);
  const varList = specs.map((s) => net.vars.get(s.name)!);
  const src = loadBundledMnist();
  const train = new VideoFeatureData(o.net, 'train', o.seed, src);
  const test = new VideoFeatureData(o.net, 'test', HELDOUT_SEED, src);
  const B = o.batchSize;
  fs.mkdirSync(o.out, { recursive: true });
  const log = fs.openSync(path.join(o.out, 'train-log.jsonl'), 'w');
  const progress = o.quiet ? null : new Progress({ total: o.steps, label: `train ${o.net}`, unit: 'step', logFraction: 0.05 });
  const started = Date.now();
  let lastLoss = NaN;
  try {
    for (let step = 0; step < o.steps; step++) {
      const b = train.batch(step * B, B);
      let parts: Float32Array = new Float32Array(3);
      tf.tidy(() => {
        const xt = tf.tensor(b.x, [B, ...net.inputShape], 'float32');
        let p: tf.Tensor | undefined;
        const { value, grads } = tf.variableGrads(() => {
          const l = videoFeatureLoss(net.forward(xt), b, target);
          p = tf.keep(l.parts);
          return l.total;
        }, varList);
        lastLoss = value.dataSync()[0];
        parts = p!.dataSync() as Float32Array;
        p!.dispose();
        varList.forEach((v, i) => grad.set(grads[v.name].dataSync() as Float32Array, offsets[i]));
      });
      if (!Number.isFinite(lastLoss)) throw new DriftlabError(`${o.net} loss became ${lastLoss} at step ${step + 1}; try a lower --lr`);
      const lr = step < warmup ? (o.lr * (step + 1)) / warmup
        : 0.5 * o.lr * (1 + Math.cos((Math.PI * (step - warmup)) / Math.max(1, o.steps - warmup)));
      adam.step(params, grad, lr);
      specs.forEach((s, i) => tf.tidy(() => varList[i].assign(tf.tensor(params.subarray(offsets[i], offsets[i] + sizes[i]), s.shape, 'float32'))));
      const r = (v: number) => Number(v.toPrecision(5));
      fs.writeSync(log, JSON.stringify({ step: step + 1, loss: r(lastLoss), bce: r(parts[0]), ce: r(parts[1]), mse: r(parts[2]), lr: Number(lr.toPrecision(4)) }) + '\n');
      progress?.tick(1, { loss: lastLoss.toFixed(4) });
      if (evalEvery > 0 && (step + 1) % evalEvery === 0 && step + 1 < o.steps) {
        const s = evaluateVideoFeatureNet(net, Math.min(evalN, heldoutN), 0, test);
        fs.writeSync(log, JSON.stringify({ eval: 'heldout', step: step + 1, ...s, seconds: (Date.now() - started) / 1000 }) + '\n');
      }
    }
    progress?.done();
    const trainSeconds = (Date.now() - started) / 1000;
    const evalStart = Date.now();
    const heldout = evaluateVideoFeatureNet(net, heldoutN, 0, test);
    const evalSeconds = (Date.now() - evalStart) / 1000;
    fs.writeSync(log, JSON.stringify({ eval: 'heldout', step: o.steps, ...heldout, seconds: (Date.now() - started) / 1000 }) + '\n');
    config.data = {
      source: 'datasets/moving-mnist (MovingMnist), digit images from the 10,000 bundled MNIST digits',
      canvas: CANVAS, pool: POOL, speed: '3.6 px/frame (simulator default), exact reflection, not stochastic',
      digitCycle: DIGIT_CYCLE, samples: o.net === 'mmnist-frame' ? 'frame 0 of each clip' : `frames 0..${entry.frames - 1} of each clip`,
      train: `clip k of MovingMnist({digits: digitCycle[k % 4], split: 'train'}, seed ${o.seed}) for k = 0..${o.steps * B - 1}, each once`,
      heldout: { split: 'test', seed: HELDOUT_SEED, n: heldoutN, clips: `0..${heldoutN - 1}` },
    };
    config.training = {
      seed: o.seed, steps: o.steps, batchSize: B, optimizer: 'AdamW', lr: o.lr, warmup, schedule: 'linear warm-up, cosine decay to 0',
      weightDecay, command: o.command, backend: o.backendLine, tfjs: tf.version.tfjs, node: process.version,
      seconds: Math.round(trainSeconds), parameters: P, finishedAt: new Date().toISOString(),
      init: frameInit ? 'per-frame stack from a frame encoder (initFrame), the rest seeded random (He-normal weights, zero biases)' : 'seeded random (He-normal weights, zero biases)',
      ...(frameInit ? { initFrame: frameInit } : {}),
    };
    config.results = { heldout, lastTrainLoss: lastLoss, heldoutEvalSeconds: Number(evalSeconds.toFixed(2)) };
    await saveMmnistNet(o.out, config, net.getNamed(), def);
    return { steps: o.steps, seconds: trainSeconds, lastLoss, heldout, parameters: P, ...(frameInit ? { initFrame: frameInit } : {}) };
  } finally {
    fs.closeSync(log);
    net.dispose();
  }
}
