/**
 * The drift-corrector interface: what the autoregressive sampler calls on every new frame
 * before it becomes context. Correctors act online, at inference; frames reach them as plain
 * float32 arrays on the host, so no gradient can flow through a rollout by construction.
 *
 * Frames are in model space ([-1, 1]), batched over the N rollouts: [N, S, S] row-major.
 */
import type { Tensor4D } from '@tensorflow/tfjs';
import type { Denoiser } from '../diffusion/samplers.js';
import type { Prediction } from '../diffusion/objective.js';
import type { Schedule } from '../diffusion/schedule.js';
import type { Rng } from '../util/rng.js';
import type { StepCorrection, WindowStep } from '../video/sample-clip.js';

export type { StepCorrection, WindowStep };

export interface FrameBatch {
  /** [n, s, s] in [-1, 1] */
  data: Float32Array;
  n: number;
  s: number;
}

/** The most recent frames of every rollout (after correction), oldest first. */
export interface FrameHistory {
  /** up to k most recent frames, each a FrameBatch, oldest first */
  recent(k: number): FrameBatch[];
  /** frames generated so far (not counting the initial context) */
  readonly generated: number;
}

/** Real clips for fitting: [m, t, s, s] in [-1, 1] (ground-truth Moving-MNIST). */
export interface ClipSet {
  data: Float32Array;
  m: number;
  t: number;
  s: number;
}

/** What a corrector may use: the model (for renoise), its schedule, and a seeded stream. */
export interface CorrectorContext {
  net: Denoiser;
  schedule: Schedule;
  prediction: Prediction;
  /** frames per model window and context frames */
  frames: number;
  contextFrames: number;
  /** frame side in pixels */
  size: number;
  /** the context-noise level the model was trained with (0 if none) */
  trainedContextT: number;
  /**
   * the context-dropout probability the model was trained with (0: it never saw a blank context);
   * absent when unknown (a hand-built context, or a checkpoint without a training record)
   */
  trainedContextDropout?: number;
  /**
   * the probability of joint windows the model was trained with (video/clips.ts joint; 0: it never
   * denoised its context); absent when unknown
   */
  trainedJoint?: number;
  rng: Rng;
  /** identifies the model a fitted corrector belongs to (checked when loading) */
  modelId: string;
  /**
   * How the model's window sees its context: 'attention' (all F frames denoised together,
   * mixed by temporalLayers temporal attention layers, causal or not) or 'concat' (the K frames
   * stacked as input channels of each target; the context rows of the output are zeros).
   * Absent in a hand-built context.
   */
  window?: { conditioning: 'attention' | 'concat'; causal: boolean; temporalLayers: number };
  /**
   * The same network as `net`, always on tfjs and differentiable (no tidy inside, so tf.grad
   * can run through it): window [B*F, S, S, 1] and one timestep per frame. For in-loop
   * correctors that need a gradient through the denoiser (reconstruction guidance).
   */
  differentiable?: (window: Tensor4D, t: Float32Array) => Tensor4D;
  /**
   * On the onnx engine: d/d window of mean_n w_n mean_d (net(window)_n - target_n)^2, window and
   * target [B*F, S, S, 1] flat, t and w one per frame, from one onnxruntime run of an
   * input-gradient graph (engine/train-graph.ts). Correctors that need a gradient through the
   * denoiser use it when present, else tf.grad through `differentiable`. Absent on tfjs.
   */
  inputGrad?: (window: Float32Array, t: Float32Array, target: Float32Array, w: Float32Array) => Promise<Float32Array>;
}

export interface DriftCorrector {
  readonly name: string;
  /** configuration as run metadata */
  describe(): Record<string, unknown>;
  /** noise level at which the sampler should show the context to the model (default 0) */
  contextT?(): number;
  /** offline fitting on real clips (and, for learned correctors, the model's own rollouts) */
  fit?(clips: ClipSet, opts: Record<string, unknown>): Promise<void>;
  /** start of a rollout: the K context frames of each of the N rollouts, [n, K, s, s] */
  reset(context: Float32Array, n: number, k: number): void;
  /** the corrected frame (a new array, same shape and range) */
  correct(frame: FrameBatch, history: FrameHistory, step: number): FrameBatch | Promise<FrameBatch>;
  /**
   * In-loop hook, optional: called at every denoising step of each new window with x_t, t, the
   * predicted x0 and eps and the context (video/sample-clip.ts WindowStep); may return a
   * corrected x0 or eps (or both). Returning nothing leaves the step exactly as it was.
   */
  denoiseStep?(step: WindowStep, history: FrameHistory): StepCorrection | undefined | void | Promise<StepCorrection | undefined | void>;
  save?(dir: string): Promise<void>;
  load?(dir: string): Promise<void>;
  /** per-rollout state (filters...), saved with every rollout step so a killed rollout resumes exactly */
  getState?(): unknown;
  setState?(s: unknown): void;
}

export type CorrectorFactory = (ctx: CorrectorContext, config: Record<string, unknown>) => DriftCorrector;

export const clamp01 = (v: number) => (v < -1 ? -1 : v > 1 ? 1 : v);
