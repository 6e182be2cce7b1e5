/**
 * driftlab's public API: `import { ... } from 'driftlab'`. Everything a user may import is
 * listed here; every other module is internal and may change between versions.
 *
 * Tensors are tfjs tensors, images NHWC in [-1, 1] inside the model; use the `tf` exported here
 * (the same tfjs instance driftlab runs on) and call `initBackend()` once before any tensor work.
 * Importing this module registers the built-in correctors.
 */
import './drift/correctors/index.js';

export * as tf from '@tensorflow/tfjs';

// ---- set-up and shared utilities
export { initBackend, backendInfo, BACKEND_CHOICES } from './backend.js';
export type { BackendName, BackendInfo } from './backend.js';
export { DriftlabError } from './util/errors.js';
export { Rng } from './util/rng.js';
export type { RngState } from './util/rng.js';

// ---- noise schedules and sampler steps (diffusers-like: addNoise, step -> { prev, predX0 })
export { makeSchedule, addNoise, DEFAULT_SCHEDULE, SCHEDULE_KINDS } from './diffusion/schedule.js';
export type { Schedule, ScheduleConfig, ScheduleKind } from './diffusion/schedule.js';
export {
  step, ddimStep, ddpmStep, sample, samplingTimesteps, predictX0Eps, epsFromX0, x0FromEps, SAMPLERS,
} from './diffusion/samplers.js';
export type { Denoiser, SamplerName, SampleOptions, StepInfo, Spacing, VarianceType, Estimates } from './diffusion/samplers.js';
export { DEFAULT_OBJECTIVE, PREDICTIONS } from './diffusion/objective.js';
export type { Prediction, ObjectiveConfig, Weighting } from './diffusion/objective.js';

// ---- models, their configs, presets, training and checkpoints
export { UNetModel } from './diffusion/model.js';
export { SPEC_UNET, validateUNetConfig } from './diffusion/config.js';
export type { UNetConfig, VideoConfig } from './diffusion/config.js';
export { PRESETS, getPreset } from './diffusion/presets.js';
export type { Preset, TrainConfig } from './diffusion/presets.js';
export { VIDEO_PRESETS, getVideoPreset } from './video/presets.js';
export type { VideoPreset, VideoTrainConfig } from './video/presets.js';
export { train } from './diffusion/train.js';
export type { TrainOptions, TrainResult } from './diffusion/train.js';
export { trainVideo } from './video/train-video.js';
export type { TrainVideoOptions } from './video/train-video.js';
export { loadCheckpoint, loadCheckpointConfig, saveCheckpoint } from './diffusion/checkpoint.js';
export type { CheckpointConfig, CheckpointData } from './diffusion/checkpoint.js';

// ---- pipelines: load a checkpoint, generate images, continue video clips, roll out
export { loadPipeline, generate, denoiserOf } from './diffusion/pipeline.js';
export type { Pipeline, PipelineOptions, GenerateOptions, Generated } from './diffusion/pipeline.js';
export { ENGINE_CHOICES } from './engine/select.js';
export type { EngineChoice } from './engine/select.js';
export { continueClips } from './video/sample-clip.js';
export type { ContinueOptions, WindowStep, StepCorrection, WindowStepHook } from './video/sample-clip.js';
export { rollout, modelId } from './video/rollout.js';
export type { RolloutOptions, RolloutSettings } from './video/rollout.js';
export { writeGif, writeMp4, writeVideo } from './video/writers.js';

// ---- drift correctors: the interface, the registry (built-ins and your own) and studies
export type { DriftCorrector, CorrectorFactory, CorrectorContext, FrameBatch, FrameHistory, ClipSet } from './drift/corrector.js';
export { registerCorrector, listCorrectors, correctorInfo, makeCorrector, chain } from './drift/registry.js';
export type { CorrectorInfo } from './drift/registry.js';
export { loadCorrectorModule, resolveCorrectors } from './drift/external.js';
export { correctorContext } from './drift/context.js';
export { runDriftStudy, DEFAULT_CORRECTORS } from './drift/study.js';
export type { DriftStudyOptions, DriftStudyResult } from './drift/study.js';

// ---- metrics: per-frame, Frechet / FVD with driftlab's encoders, trajectory error, FID
export { mse, psnrFromMse, ssim, frameMetrics } from './eval/frames.js';
export type { Frames, FrameMetrics, SsimOptions } from './eval/frames.js';
export { gaussianStats, frechetDistance, frechetFromFeatures } from './eval/frechet.js';
export type { GaussianStats, FrechetResult } from './eval/frechet.js';
export { loadFeatureNet, featureNetNames } from './eval/features/index.js';
export type { FeatureNet, ClassifierNet } from './eval/features/index.js';
export {
  runFrameMetrics, readRunArrays, scoreRun, frameFeatures, clipFeatures, frechetFrameCurve, fvdAtHorizons,
  realFrameStats, realClipStats, summarizeMetrics, summarizeAt, referenceSeed,
} from './drift/metrics.js';
export { toEncoderFrames, ENCODER_SIDE } from './eval/features/video-input.js';
export type { RunFrameMetrics, RunFrameMetricsOptions, RunArrays, FrechetCurve, FvdRow, FrameSummary, ToInput, MmnistData } from './drift/metrics.js';
export { trajectoryError, truthTrajectories } from './drift/trajectory-truth.js';
export { TrajectoryMatcher, recoverPositions } from './drift/trajectory.js';
export { loadClassifier } from './eval/features/mnist-classifier.js';
export { evaluateCheckpoint } from './eval/fid.js';
export type { FidOptions, FidReport } from './eval/fid.js';

// ---- datasets: MNIST and Moving-MNIST with ground truth
export { loadBundledMnist, loadIdx, toFloat, MnistBatches } from '../datasets/mnist/index.js';
export type { MnistData, IdxData } from '../datasets/mnist/index.js';
export { MovingMnist, MovingMnistClip, DEFAULT_MMNIST } from '../datasets/moving-mnist/index.js';
export type { MovingMnistConfig, DigitTruth } from '../datasets/moving-mnist/index.js';
export { loadClips } from '../datasets/moving-mnist/load.js';
export type { Clips } from '../datasets/moving-mnist/load.js';
export { clipWindow, poolFrame } from './video/clips.js';
