/**
 * Named recipes: model + schedule + objective + training defaults.
 *   mnist-tiny   trains in seconds; for tests
 *   mnist-small  the reference network of shared/bench/UNET_SPEC.md (+ class conditioning)
 *   mnist-base   the seed recipe's scale: T=1000, batch 128, 5 epochs, a wider U-Net
 */
import { DriftlabError } from '../util/errors.js';
import type { Hyper } from './trainer.js';
import { SPEC_UNET, UNetConfig } from './config.js';
import { DEFAULT_OBJECTIVE, ObjectiveConfig } from './objective.js';
import { DEFAULT_SCHEDULE, ScheduleConfig } from './schedule.js';

/** Optimizer and checkpoint settings (trainer.ts Hyper) plus the image batch and augmentation. */
export interface TrainConfig extends Hyper {
  batchSize: number;
  /** total optimizer steps; when epochs is set, steps = ceil(epochs * N / batch) */
  steps: number;
  epochs?: number;
  /** probability of replacing a label by the null class (classifier-free guidance) */
  classDropout: number;
  flip: boolean;
}

export interface Preset {
  name: string;
  description: string;
  model: UNetConfig;
  schedule: ScheduleConfig;
  objective: ObjectiveConfig;
  train: TrainConfig;
}

const baseTrain: TrainConfig = {
  batchSize: 64, steps: 10000, lr: 1e-4, lrWarmup: 0, weightDecay: 0.01, gradClip: 1.0, emaDecay: 0.9995,
  classDropout: 0.1, checkpointEvery: 250, flip: false, seed: 0,
};

export const PRESETS: Record<string, Preset> = {
  'mnist-tiny': {
    name: 'mnist-tiny',
    description: 'tiny U-Net (2 levels, 8/16 channels) that trains in seconds; for tests',
    model: {
      sampleSize: 28, inChannels: 1, outChannels: 1, blockOutChannels: [8, 16], layersPerBlock: 1,
      attention: [false, true], midAttention: true, attentionHeads: 1, normGroups: 4, normEps: 1e-5,
      timeEmbedDim: 16, timeEmbedHidden: 32, numClasses: 10,
    },
    schedule: { ...DEFAULT_SCHEDULE },
    objective: { ...DEFAULT_OBJECTIVE },
    train: { ...baseTrain, batchSize: 16, steps: 40, lr: 2e-3, checkpointEvery: 20, emaDecay: 0.99 },
  },
  'mnist-small': {
    name: 'mnist-small',
    description: 'the reference network of UNET_SPEC.md (32/64/64, attention at 7x7), class-conditional with a null class',
    model: { ...SPEC_UNET, numClasses: 10 },
    schedule: { ...DEFAULT_SCHEDULE },
    objective: { ...DEFAULT_OBJECTIVE },
    train: { ...baseTrain },
  },
  'mnist-base': {
    name: 'mnist-base',
    description: 'the seed recipe: T=1000, batch 128, 5 epochs; a wider U-Net (64/128/128, 2 ResBlocks per level)',
    model: {
      ...SPEC_UNET, blockOutChannels: [64, 128, 128], layersPerBlock: 2, normGroups: 32,
      timeEmbedDim: 64, timeEmbedHidden: 256, attentionHeads: 4, numClasses: 10,
    },
    schedule: { ...DEFAULT_SCHEDULE },
    objective: { ...DEFAULT_OBJECTIVE },
    train: { ...baseTrain, batchSize: 128, epochs: 5, steps: 391, checkpointEvery: 100 },
  },
};

export function getPreset(name: string): Preset {
  const p = PRESETS[name];
  if (!p) throw new DriftlabError(`unknown preset '${name}'; choose one of ${Object.keys(PRESETS).join(', ')}`);
  return structuredClone(p);
}
