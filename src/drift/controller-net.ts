/**
 * The controller network: a small residual conv net that maps (new frame, last K context frames)
 * to a corrected frame, and its one-step training loop.
 *
 *   input  x: [B, S, S, 1+K]  channel 0 = the new generated frame, channel j = context lag j
 *                             (1 = the newest context frame ... K = the oldest), all in [-1, 1]
 *   output y: [B, S, S, 1]    y = clip(x[..., 0] + r(x), -1, 1)
 *
 *   r = conv_L(silu(conv_{L-1}(... silu(conv_1(x)))))   3x3 'same' convs, `hidden` channels
 *
 * The last conv starts at zero, so the untrained controller is exactly the identity; learning
 * moves it away only as far as the data asks. Parameters live on the host as named Float32Arrays
 * (nothing persists on the tensor engine between calls); training binds them to tf.Variables
 * for its duration only. The loss is one-step: the corrected frame against the simulator's frame,
 * with the input a constant; no gradient ever reaches whatever produced the input.
 */
import * as tf from '@tensorflow/tfjs';
import { AdamW, clipGradNorm } from '../diffusion/optim.js';
import { Rng } from '../util/rng.js';

export interface ControllerNetConfig {
  /** context frames the controller sees */
  k: number;
  /** channels of the hidden convs */
  hidden: number;
  /** number of 3x3 convs (>= 2) */
  layers: number;
}

export type ControllerParams = Map<string, Float32Array>;

export interface ParamShape { name: string; shape: number[] }

/** conv{i}.weight [3,3,Cin,Cout] and conv{i}.bias [Cout], i = 0..layers-1. */
export function controllerParamShapes(c: ControllerNetConfig): ParamShape[] {
  const out: ParamShape[] = [];
  for (let i = 0; i < c.layers; i++) {
    const cin = i === 0 ? c.k + 1 : c.hidden, cout = i === c.layers - 1 ? 1 : c.hidden;
    out.push({ name: `conv${i}.weight`, shape: [3, 3, cin, cout] }, { name: `conv${i}.bias`, shape: [cout] });
  }
  return out;
}

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** He-normal hidden convs, zero biases, zero last conv (=> identity). */
export function initControllerParams(c: ControllerNetConfig, rng: Rng): ControllerParams {
  const p: ControllerParams = new Map();
  for (const { name, shape } of controllerParamShapes(c)) {
    const v = new Float32Array(numel(shape));
    const last = name.startsWith(`conv${c.layers - 1}.`);
    if (name.endsWith('.weight') && !last) {
      const std = Math.sqrt(2 / (9 * shape[2]));
      for (let i = 0; i < v.length; i++) v[i] = rng.normal() * std;
    }
    p.set(name, v);
  }
  return p;
}

/** The unclipped corrected frame x0 + r(x): [B,S,S,1+K] -> [B,S,S,1]. */
export function controllerForward(P: Map<string, tf.Tensor>, c: ControllerNetConfig, x: tf.Tensor4D): tf.Tensor4D {
  let h: tf.Tensor4D = x;
  for (let i = 0; i < c.layers; i++) {
    h = tf.add(tf.conv2d(h, P.get(`conv${i}.weight`) as tf.Tensor4D, 1, 'same'), P.get(`conv${i}.bias`)!) as tf.Tensor4D;
    if (i < c.layers - 1) h = tf.mul(h, tf.sigmoid(h)) as tf.Tensor4D; // SiLU
  }
  const frame = tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, 1]);
  return tf.add(frame, h) as tf.Tensor4D;
}

/**
 * The one-step loss: mean squared error of the (unclipped) corrected frame against the target.
 * Unclipped because clipping kills the gradient of pixels pushed past the range; the targets are
 * in [-1, 1], so the clipped error is never larger. x: [B,S,S,1+K], target: [B,S,S,1].
 */
export function controllerLoss(P: Map<string, tf.Tensor>, c: ControllerNetConfig, x: tf.Tensor4D, target: tf.Tensor4D): tf.Scalar {
  return tf.mean(tf.squaredDifference(controllerForward(P, c, x), target)) as tf.Scalar;
}

/**
 * Stack the channels: frame [n,S,S] and context (oldest first, as FrameHistory.recent gives it;
 * fewer than k frames are padded with the oldest one, or the frame itself if there is none)
 * -> [n,S,S,1+k], channel j = lag j.
 */
export function stackInput(frame: Float32Array, context: Float32Array[], n: number, S: number, k: number): Float32Array {
  const fr = S * S, C = k + 1;
  const chans: Float32Array[] = [frame];
  for (let j = 1; j <= k; j++) chans.push(context[context.length - j] ?? context[0] ?? frame);
  const out = new Float32Array(n * fr * C);
  for (let c = 0; c < C; c++) {
    const src = chans[c];
    for (let i = 0; i < n * fr; i++) out[i * C + c] = src[i];
  }
  return out;
}

/** Run the controller with no tape: input [n,S,S,1+k] -> corrected frames [n,S,S] in [-1,1]. */
export function applyController(params: ControllerParams, c: ControllerNetConfig, input: Float32Array, n: number, S: number): Float32Array {
  const y = tf.tidy(() => {
    const P = new Map<string, tf.Tensor>();
    for (const { name, shape } of controllerParamShapes(c)) P.set(name, tf.tensor(params.get(name)!, shape, 'float32'));
    return tf.clipByValue(controllerForward(P, c, tf.tensor4d(input, [n, S, S, c.k + 1])), -1, 1);
  });
  try {
    return y.dataSync() as Float32Array;
  } finally {
    y.dispose();
  }
}

/** One-step MSE (clipped output, as deployed) over a set of pairs, batched; no tape. */
export function evalLoss(params: ControllerParams, c: ControllerNetConfig, inputs: Float32Array, targets: Float32Array, S: number, batch = 64): number {
  const fr = S * S, C = c.k + 1, P = targets.length / fr;
  let se = 0;
  for (let b0 = 0; b0 < P; b0 += batch) {
    const B = Math.min(batch, P - b0);
    const y = applyController(params, c, inputs.subarray(b0 * fr * C, (b0 + B) * fr * C), B, S);
    for (let i = 0; i < B * fr; i++) { const d = y[i] - targets[b0 * fr + i]; se += d * d; }
  }
  return se / Math.max(1, targets.length);
}

export interface TrainOptions {
  lr: number;
  weightDecay: number;
  batch: number;
  gradClip: number;
}

/**
 * The controller's parameters bound to tf.Variables for training, with AdamW on the host
 * (src/diffusion/optim.ts). Call dispose() when done; params() reads the current values.
 */
export class ControllerTrainer {
  readonly vars = new Map<string, tf.Variable>();
  private readonly shapes: ParamShape[];
  private readonly flat: Float32Array;
  private readonly offsets: number[] = [];
  private readonly opt: AdamW;
  private static nextId = 0;

  constructor(readonly config: ControllerNetConfig, init: ControllerParams, readonly o: TrainOptions) {
    this.shapes = controllerParamShapes(config);
    let size = 0;
    for (const s of this.shapes) { this.offsets.push(size); size += numel(s.shape); }
    this.flat = new Float32Array(size);
    const id = ControllerTrainer.nextId++;
    this.shapes.forEach((s, i) => {
      this.flat.set(init.get(s.name)!, this.offsets[i]);
      this.vars.set(s.name, tf.tidy(() => tf.variable(tf.tensor(init.get(s.name)!, s.shape, 'float32'), true, `controller${id}/${s.name}`)));
    });
    this.opt = new AdamW(size, { lr: o.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: o.weightDecay });
  }

  get varList(): tf.Variable[] {
    return [...this.vars.values()];
  }

  /**
   * One AdamW step on a minibatch: x [B,S,S,1+K], target [B,S,S] as host arrays (constants:
   * the tape starts at the controller's variables and ends at the loss). Returns the loss.
   */
  step(x: Float32Array, target: Float32Array, B: number, S: number): number {
    const { value, grads } = tf.tidy(() => {
      const xt = tf.tensor4d(x, [B, S, S, this.config.k + 1]);
      const yt = tf.tensor4d(target, [B, S, S, 1]);
      return tf.variableGrads(() => controllerLoss(this.vars, this.config, xt, yt), this.varList);
    });
    const g = new Float32Array(this.flat.length);
    this.shapes.forEach((s, i) => {
      const gi = grads[this.vars.get(s.name)!.name];
      if (gi) g.set(gi.dataSync() as Float32Array, this.offsets[i]);
    });
    const loss = value.dataSync()[0];
    value.dispose();
    for (const t of Object.values(grads)) t?.dispose();
    clipGradNorm(g, this.o.gradClip);
    this.opt.step(this.flat, g);
    this.shapes.forEach((s, i) => {
      const v = this.vars.get(s.name)!;
      tf.tidy(() => v.assign(tf.tensor(this.flat.subarray(this.offsets[i], this.offsets[i] + numel(s.shape)), s.shape, 'float32')));
    });
    return loss;
  }

  /**
   * `epochs` passes over the pairs in a seeded order; returns the mean training loss of the last
   * epoch. inputs [P,S,S,1+K], targets [P,S,S].
   */
  train(inputs: Float32Array, targets: Float32Array, S: number, epochs: number, rng: Rng): number {
    const fr = S * S, C = this.config.k + 1, P = targets.length / fr, B = Math.min(this.o.batch, P);
    const order = Int32Array.from({ length: P }, (_, i) => i);
    let last = NaN;
    for (let e = 0; e < epochs; e++) {
      rng.shuffle(order);
      let sum = 0, cnt = 0;
      for (let b0 = 0; b0 + B <= P; b0 += B) { // drop the ragged tail (it is shuffled in next epoch)
        const x = new Float32Array(B * fr * C), y = new Float32Array(B * fr);
        for (let j = 0; j < B; j++) {
          const p = order[b0 + j];
          x.set(inputs.subarray(p * fr * C, (p + 1) * fr * C), j * fr * C);
          y.set(targets.subarray(p * fr, (p + 1) * fr), j * fr);
        }
        sum += this.step(x, y, B, S);
        cnt += 1;
      }
      last = sum / Math.max(1, cnt);
    }
    return last;
  }

  params(): ControllerParams {
    const p: ControllerParams = new Map();
    this.shapes.forEach((s, i) => p.set(s.name, this.flat.slice(this.offsets[i], this.offsets[i] + numel(s.shape))));
    return p;
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}
