/**
 * Video presets: Moving-MNIST clips through the space-time U-Net.
 *
 *   mmnist-tiny   16x16 frames (64x64 canvas pooled 4x4), 6-frame windows, tiny U-Net; tests
 *   mmnist-small  32x32 frames (64x64 canvas pooled 2x2), 5-frame windows: the 4 context frames
 *                 concatenated as input channels of 1 target (MCVD-style), v-prediction, 10%
 *                 context dropout; the mnist-small U-Net trunk. Chosen by measurement (context
 *                 use, docs/EXPERIMENTS.md). 32x32 keeps both digits legible while a model worth
 *                 studying trains on 2 cores in a few hours; 64x64 would cost ~4x more per frame.
 *   mmnist-small-attn  the first recipe (4 context + 4 targets through temporal attention,
 *                 epsilon prediction), kept for comparison: it learned to ignore its context.
 */
import type { SelfContextConfig } from './self-context.js';
import { DriftlabError } from '../util/errors.js';
import type { Hyper } from '../diffusion/trainer.js';
import { UNetConfig } from '../diffusion/config.js';
import { DEFAULT_OBJECTIVE, ObjectiveConfig } from '../diffusion/objective.js';
import { DEFAULT_SCHEDULE, ScheduleConfig } from '../diffusion/schedule.js';
import { MovingMnistConfig, DEFAULT_MMNIST } from '../../datasets/moving-mnist/index.js';

/** Optimizer and checkpoint settings (trainer.ts Hyper) plus the clip batch and context noise. */
export interface VideoTrainConfig extends Hyper {
  /** clips per step */
  batchSize: number;
  steps: number;
  /** context noise augmentation: context frames get t ~ U{0..maxContextT} (0 = always clean) */
  maxContextT: number;
  /** probability of training a window with a blank context (0 = never); see clips.ts */
  contextDropout?: number;
  /** context jitter: context frames draw the digits displaced by N(0, sigma^2) canvas px (clips.ts ClipStreamOptions.contextJitter) */
  contextJitter?: number;
  /** one t per target frame (Diffusion Forcing) instead of one per window */
  independentT?: boolean;
  /** probability of a joint window: context noised at the targets' t and in the loss (clips.ts ClipStreamOptions.joint) */
  joint?: number;
  /** probability of a hard window, its digits overlapping at the last context frame (clips.ts ClipStreamOptions.overlapOversample) */
  overlapOversample?: number;
  /** canvas px under which two digits count as overlapping (default 10) */
  overlapNear?: number;
  /** a hard window's digits overlap at any of its last overlapFrames context frames (default 1) */
  overlapFrames?: number;
  /** training on the model's own rollouts (self-context.ts); unset = off */
  selfContext?: SelfContextConfig;
  /** models with anchor slots (VideoConfig.anchorFrames): the newest frames start 0..anchorGap frames into the clip (default ANCHOR_GAP) */
  anchorGap?: number;
}

/** How far into a clip the newest frames of an anchored training window start, at most (frames). */
export const ANCHOR_GAP = 64;

export interface VideoPreset {
  name: string;
  description: string;
  model: UNetConfig;
  schedule: ScheduleConfig;
  objective: ObjectiveConfig;
  data: MovingMnistConfig & { pool: number };
  train: VideoTrainConfig;
}

const baseTrain: VideoTrainConfig = {
  batchSize: 8, steps: 20000, lr: 2e-4, lrWarmup: 200, weightDecay: 0.01, gradClip: 1.0, emaDecay: 0.9995,
  checkpointEvery: 200, maxContextT: 0, seed: 0,
};

export const VIDEO_PRESETS: Record<string, VideoPreset> = {
  'mmnist-tiny': {
    name: 'mmnist-tiny',
    description: '16x16 Moving-MNIST (4x4 pooled), 6-frame windows (3 context), tiny space-time U-Net; for tests',
    model: {
      sampleSize: 16, inChannels: 1, outChannels: 1, blockOutChannels: [8, 16], layersPerBlock: 1,
      attention: [false, false], midAttention: false, attentionHeads: 1, normGroups: 4, normEps: 1e-5,
      timeEmbedDim: 16, timeEmbedHidden: 32, numClasses: 0,
      video: { frames: 6, contextFrames: 3, temporal: [true, true], temporalMid: true, temporalHeads: 2, maxFrames: 16, causal: false },
    },
    schedule: { ...DEFAULT_SCHEDULE },
    objective: { ...DEFAULT_OBJECTIVE },
    data: { ...DEFAULT_MMNIST, pool: 4 },
    train: { ...baseTrain, batchSize: 4, steps: 30, lr: 2e-3, lrWarmup: 0, checkpointEvery: 15, emaDecay: 0.99 },
  },
  'mmnist-small': {
    name: 'mmnist-small',
    description: '32x32 Moving-MNIST (2x2 pooled), 4 context frames stacked as input channels of 1 target (MCVD-style), v-prediction, 10% context dropout',
    model: {
      sampleSize: 32, inChannels: 1, outChannels: 1, blockOutChannels: [32, 64, 64], layersPerBlock: 1,
      attention: [false, false, true], midAttention: true, attentionHeads: 1, normGroups: 8, normEps: 1e-5,
      timeEmbedDim: 32, timeEmbedHidden: 128, numClasses: 0,
      video: { frames: 5, contextFrames: 4, temporal: [false, false, false], temporalMid: false, temporalHeads: 4, maxFrames: 32, causal: false, conditioning: 'concat' },
    },
    schedule: { ...DEFAULT_SCHEDULE },
    objective: { ...DEFAULT_OBJECTIVE, prediction: 'v' },
    data: { ...DEFAULT_MMNIST, pool: 2 },
    train: { ...baseTrain, batchSize: 32, contextDropout: 0.1 },
  },
  'mmnist-small-attn': {
    name: 'mmnist-small-attn',
    description: 'the first recipe (shipped until 2026-12-01; it learned to ignore its context): 8-frame windows (4 context + 4 targets) seen only through temporal attention, epsilon prediction',
    model: {
      sampleSize: 32, inChannels: 1, outChannels: 1, blockOutChannels: [32, 64, 64], layersPerBlock: 1,
      attention: [false, false, true], midAttention: true, attentionHeads: 1, normGroups: 8, normEps: 1e-5,
      timeEmbedDim: 32, timeEmbedHidden: 128, numClasses: 0,
      video: { frames: 8, contextFrames: 4, temporal: [false, true, true], temporalMid: true, temporalHeads: 4, maxFrames: 32, causal: false },
    },
    schedule: { ...DEFAULT_SCHEDULE },
    objective: { ...DEFAULT_OBJECTIVE },
    data: { ...DEFAULT_MMNIST, pool: 2 },
    train: { ...baseTrain },
  },
};

export function getVideoPreset(name: string): VideoPreset {
  const p = VIDEO_PRESETS[name];
  if (!p) throw new DriftlabError(`unknown video preset '${name}'; choose one of ${Object.keys(VIDEO_PRESETS).join(', ')}`);
  return structuredClone(p);
}
