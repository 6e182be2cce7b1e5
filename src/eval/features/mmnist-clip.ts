/**
 * The driftlab Moving-MNIST 16-frame clip encoder: a factorized space-time CNN whose 128-d
 * penultimate activations (after ReLU) define "FVD with the driftlab Moving-MNIST clip encoder"
 * for clips of 16 frames of 32x32 in [0,1] (video-input.ts toEncoderFrames converts frames).
 *
 *   x [B,16,32,32,1] in [0,1] -> (x - 0.05) / 0.2, frames folded into the batch [B*16,32,32,1]
 *   per frame (the frame encoder's stack, mmnist-frame.ts, layer for layer):
 *              conv3x3  1->16 s1 +ReLU [32,32]  conv3x3 16->32 s2 +ReLU [16,16]
 *              conv3x3 32->64 s2 +ReLU [8,8]    conv3x3 64->64 s2 +ReLU [4,4]
 *              [flatten 1024, spatial max 64] -> fc frame 128 +ReLU
 *   over time [B,16,128]: tconv k3 128->128 s1 +ReLU [B,16,128]
 *                         tconv k3 128->128 s2 +ReLU [B,8,128]
 *                         tconv k3 128->128 s2 +ReLU [B,4,128]
 *   flatten [B,512] -> fc1 128 +ReLU (= the features) -> head 43 (linear)
 *
 * Initialisation from a frame encoder (`eval train-features --net mmnist-clip --init-frame DIR`,
 * initClipFromFrame below): because the per-frame stack is the frame encoder's (same input size,
 * normalisation, channels and strides), its parameters conv1..conv4 and frame (<- the frame
 * encoder's fc1, whose ReLU output is the frame encoder's 128-d feature) can be copied from a
 * trained mmnist-frame checkpoint; the temporal convs, fc1 and head keep their random init and
 * nothing is frozen. Layers are copied from the bottom up while input size, normalisation,
 * channels and strides agree (a mismatch stops the copy there: later layers would see different
 * inputs); `frame` only if the whole conv stack was copied and frameDim equals the frame
 * encoder's hidden size. The frame encoder's features are sparse and large (RMS about 3 on
 * training frames), which made the randomly initialised temporal layers start with a loss of ~300
 * and learn positions slowly; so when calibration frames are given (training passes the frames of
 * its first batch), the copied `frame` weight and bias are divided by the RMS r of the frame
 * features on them: relu(Wx + b) / r = relu((W/r) x + b/r), the same embedding at unit RMS.
 * config.json records it under training.initFrame (folder, sha256 of its weights, its held-out
 * results, which parameters were copied, r). Checkpoints of the earlier,
 * lighter per-frame stack (channels [16,32,32], strides [2,2,2], frameDim 64) still load: the
 * layer shapes come from config.json's arch.
 *
 * A temporal conv (kernel 3, zero padding 1 in time, stride s) is an im2col over time and one
 * matmul: weight [3*Cin, Cout], row k*Cin + c multiplies channel c of frame t + k - 1. Per-frame
 * embeddings keep where the digits are (no spatial pooling), so the temporal layers can see how
 * they move. About 53 M multiply-adds per clip (16 x 3.2 M for the frames, 1.4 M over time):
 * 1,000 clips take a few seconds on wasm (1 thread).
 *
 * Supervised target (TargetSpec below; trained by eval/train-video-features.ts on clips with 1,
 * 2 or 3 digits from the 'train' digit split):
 *   - presence: 10 logits, sigmoid BCE against the multi-hot of the clip's digit classes;
 *   - count: 3 logits, softmax CE over 1, 2 or 3 digits;
 *   - per digit (3 slots, ordered by label, then centre x in frame 0; empty slots masked), 10
 *     values: centres (top-left + 14, canvas px / 64) in frames 0, 8 and 15, and velocities
 *     (canvas px per frame / 4) in frames 0 and 15 -- the velocity with which the digit leaves
 *     frame 0 and the one with which it arrived in frame 15, both visible in the clip;
 *     squared error, weighted by TargetSpec.regWeight.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ParamStore, linear } from '../../diffusion/layers.js';
import { DriftlabError } from '../../util/errors.js';
import type { FeatureNetEntry } from './index.js';
import {
  FrameArch, NetDef, PACKAGE_ROOT, ParamSpec, TargetSpec, convSpecs, convStack, flattenAndMax, frameNetDef, headSize, linearSpecs,
  loadMmnistNet, sideAfter,
} from './mmnist-frame.js';

export const CLIP_FID_NAME = 'FVD (driftlab Moving-MNIST clip encoder; not comparable with I3D-based FVD)';
export const DEFAULT_CLIP_DIR = path.join(PACKAGE_ROOT, 'checkpoints', 'mmnist-clip');

export interface ClipArch {
  frames: number;
  inputSize: number;
  channels: number[];
  strides: number[];
  frameDim: number;
  /** temporal convs, kernel 3 */
  temporal: { channels: number; stride: number }[];
  hidden: number;
  mean: number;
  std: number;
}

/** per-frame stack = DEFAULT_FRAME_ARCH's (channels, strides, frameDim = its hidden), so a frame encoder can initialise it */
export const DEFAULT_CLIP_ARCH: ClipArch = {
  frames: 16, inputSize: 32, channels: [16, 32, 64, 64], strides: [1, 2, 2, 2], frameDim: 128,
  temporal: [{ channels: 128, stride: 1 }, { channels: 128, stride: 2 }, { channels: 128, stride: 2 }], hidden: 128, mean: 0.05, std: 0.2,
};

/** frames whose centres the clip target regresses, and whose velocities */
export const CLIP_POSITION_FRAMES = [0, 8, 15];
export const CLIP_VELOCITY_FRAMES = [0, 15];

export const CLIP_TARGET: TargetSpec = {
  classes: 10, counts: [1, 2, 3], slots: 3,
  perSlot: [...CLIP_POSITION_FRAMES.flatMap((t) => [`cx@${t}`, `cy@${t}`]), ...CLIP_VELOCITY_FRAMES.flatMap((t) => [`vx@${t}`, `vy@${t}`])],
  positionScale: 64, velocityScale: 4, regWeight: 10,
  description: 'presence: multi-hot of the clip\'s digit classes (sigmoid BCE); count: 1/2/3 digits (softmax CE); '
    + 'per digit (ordered by label, then centre x in frame 0; slots beyond the digit count masked): centres (top-left + 14, 64x64 canvas px / 64) '
    + 'in frames 0, 8, 15 and velocities (canvas px per frame / 4) leaving frame 0 and arriving in frame 15; loss = BCE + CE + regWeight * masked MSE',
};

/** Frame count after the temporal convs (kernel 3, pad 1). */
export function framesAfter(a: ClipArch): number {
  return sideAfter(a.frames, a.temporal.map((l) => l.stride));
}

/** Kernel-3, pad-1 conv over time: x [B,T,Cin] -> [B,ceil(T/stride),Cout], weight [3*Cin,Cout]. */
export function temporalConv(P: ParamStore, name: string, x: tf.Tensor3D, stride: number): tf.Tensor3D {
  const [B, T, C] = x.shape;
  const xp = tf.pad(x, [[0, 0], [1, 1], [0, 0]]);
  let cols: tf.Tensor3D = tf.concat([0, 1, 2].map((k) => tf.slice(xp, [0, k, 0], [B, T, C])), 2);
  if (stride > 1) {
    const To = Math.floor((T - 1) / stride) + 1;
    // pick frames 0, stride, 2*stride, ...: pad time to To*stride, fold, keep the first of each group
    if (To * stride > T) cols = tf.pad(cols, [[0, 0], [0, To * stride - T], [0, 0]]);
    cols = tf.slice(cols.reshape([B, To, stride, 3 * C]), [0, 0, 0, 0], [B, To, 1, 3 * C]).reshape([B, To, 3 * C]);
  }
  return linear(P, name, cols) as tf.Tensor3D;
}

export const clipNetDef: NetDef = {
  name: 'mmnist-clip',
  fidName: CLIP_FID_NAME,
  defaultDir: DEFAULT_CLIP_DIR,
  batch: 32,
  inputShape: (a: ClipArch) => [a.frames, a.inputSize, a.inputSize, 1],
  dim: (a: ClipArch) => a.hidden,
  specs(a: ClipArch, t: TargetSpec): ParamSpec[] {
    const side = sideAfter(a.inputSize, a.strides);
    const C = a.channels.at(-1)!;
    const specs = [...convSpecs('conv', 1, a.channels), ...linearSpecs('frame', side * side * C + C, a.frameDim)];
    let cin = a.frameDim;
    a.temporal.forEach((l, i) => { specs.push(...linearSpecs(`tconv${i + 1}`, 3 * cin, l.channels)); cin = l.channels; });
    specs.push(...linearSpecs('fc1', framesAfter(a) * cin, a.hidden), ...linearSpecs('head', a.hidden, headSize(t)));
    return specs;
  },
  forward(P, a: ClipArch, x) {
    const B = x.shape[0], S = a.inputSize, F = a.frames;
    const h = convStack(P, 'conv', x.reshape([B * F, S, S, 1]), a.strides, a.mean, a.std);
    let z = tf.relu(linear(P, 'frame', flattenAndMax(h))).reshape([B, F, a.frameDim]) as tf.Tensor3D;
    a.temporal.forEach((l, i) => { z = tf.relu(temporalConv(P, `tconv${i + 1}`, z, l.stride)); });
    const features = tf.relu(linear(P, 'fc1', z.reshape([B, -1]))) as tf.Tensor2D;
    return { features, head: linear(P, 'head', features) as tf.Tensor2D };
  },
};

/**
 * Which clip parameters a frame encoder of architecture f can initialise: clip name -> frame name.
 * conv layers from the bottom while input size, normalisation, channels and strides agree;
 * frame <- fc1 only if the whole stack matched and frameDim equals f.hidden.
 */
export function frameInitMapping(c: ClipArch, f: FrameArch): Map<string, string> {
  const m = new Map<string, string>();
  if (c.inputSize !== f.inputSize || c.mean !== f.mean || c.std !== f.std) return m;
  let i = 0;
  for (; i < Math.min(c.channels.length, f.channels.length); i++) {
    if (c.channels[i] !== f.channels[i] || c.strides[i] !== f.strides[i]) break;
    for (const p of ['weight', 'bias']) m.set(`conv${i + 1}.${p}`, `conv${i + 1}.${p}`);
  }
  if (i === c.channels.length && i === f.channels.length && c.frameDim === f.hidden) {
    for (const p of ['weight', 'bias']) m.set(`frame.${p}`, `fc1.${p}`);
  }
  return m;
}

/** What training.initFrame of a clip config.json records. */
export interface FrameInitRecord {
  from: string;
  weightsSha256: string;
  frameArch: FrameArch;
  frameTraining: { seed?: unknown; steps?: unknown; batchSize?: unknown; command?: unknown };
  frameHeldout: unknown;
  /** RMS of the frame encoder's features on the calibration frames; the copied frame layer was divided by it (1: no calibration) */
  frameEmbeddingRms: number;
  calibrationFrames: number;
  /** 'clip name <- frame name' */
  copied: string[];
  /** clip parameters left at their random init */
  randomInit: string[];
  note: string;
}

/**
 * Overwrite the per-frame stack of clip parameters `init` (architecture `arch`) with a trained frame
 * encoder's from folder dir (see the file header); the other parameters are untouched. Throws if the
 * folder holds no frame encoder or nothing lines up.
 */
export async function initClipFromFrame(
  arch: ClipArch, specs: ParamSpec[], init: Map<string, Float32Array>, dir: string, calib?: { x: Float32Array; n: number },
): Promise<FrameInitRecord> {
  const frame = await loadMmnistNet(frameNetDef, dir);
  try {
    const fa = frame.config.arch as FrameArch;
    const named = frame.getNamed();
    const mapping = frameInitMapping(arch, fa);
    const copied: string[] = [];
    for (const s of specs) {
      const from = mapping.get(s.name);
      if (!from) continue;
      const v = named.get(from)!;
      const shape = frame.specs.find((q) => q.name === from)!.shape;
      if (shape.join(',') !== s.shape.join(',')) continue;
      init.set(s.name, v.slice());
      copied.push(`${s.name} <- ${from}`);
    }
    if (copied.length === 0) {
      throw new DriftlabError(`--init-frame ${dir}: no layer of its frame encoder (channels [${fa.channels}], strides [${fa.strides}], hidden ${fa.hidden}) `
        + `lines up with the clip net's per-frame stack (channels [${arch.channels}], strides [${arch.strides}], frameDim ${arch.frameDim})`);
    }
    const copiedNames = new Set(copied.map((c) => c.split(' <- ')[0]));
    let rms = 1;
    if (calib && calib.n > 0 && copiedNames.has('frame.weight')) {
      const f = frame.features(calib.x, calib.n);
      rms = Math.sqrt(f.reduce((a, v) => a + v * v, 0) / f.length);
      if (!(rms > 0)) rms = 1;
      for (const n of ['frame.weight', 'frame.bias']) init.set(n, init.get(n)!.map((v) => v / rms));
    }
    const t = (frame.config.training ?? {}) as Record<string, unknown>;
    const hash = createHash('sha256').update(fs.readFileSync(path.join(dir, 'model.safetensors'))).digest('hex');
    return {
      from: dir, weightsSha256: hash, frameArch: fa,
      frameTraining: { seed: t.seed, steps: t.steps, batchSize: t.batchSize, command: t.command },
      frameHeldout: (frame.config.results as any)?.heldout ?? null,
      frameEmbeddingRms: rms, calibrationFrames: rms === 1 ? 0 : calib!.n,
      copied, randomInit: specs.map((s) => s.name).filter((n) => !copiedNames.has(n)),
      note: 'copied parameters start from the frame encoder\'s values (frame.weight / frame.bias divided by frameEmbeddingRms) and are trained like all others (nothing frozen)',
    };
  } finally {
    frame.dispose();
  }
}

export const loadClipEncoder = (dir?: string) => loadMmnistNet(clipNetDef, dir);

export const mmnistClipEntry: FeatureNetEntry = {
  name: 'mmnist-clip',
  describe: '128-d features of the driftlab Moving-MNIST 16-frame clip encoder ([16,32,32] clips in [0,1]: digit classes, count, positions, velocities)',
  defaultCheckpoint: DEFAULT_CLIP_DIR,
  load: (dir?: string) => loadClipEncoder(dir),
};
