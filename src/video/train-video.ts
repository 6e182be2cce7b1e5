/**
 * Clip training (`driftlab train-video`): the shared loop over Moving-MNIST windows, optionally
 * starting from an image checkpoint (spatial weights by name; temporal blocks start as identity).
 */
import { CHECKPOINT_FORMAT, CheckpointConfig, loadCheckpoint } from '../diffusion/checkpoint.js';
import { splitFlat, flatLayout } from '../diffusion/model.js';
import { modelParamSpecs } from '../diffusion/arch.js';
import { RunCommon, TrainResult, runTraining } from '../diffusion/trainer.js';
import { DriftlabError } from '../util/errors.js';
import { ClipStream, modelFrameSize } from './clips.js';
import { VideoPreset } from './presets.js';

export interface TrainVideoOptions extends RunCommon {
  preset: VideoPreset;
  /** image checkpoint whose (EMA) weights initialise the spatial layers */
  initImage?: string;
}

export async function trainVideo(o: TrainVideoOptions): Promise<TrainResult> {
  const p = o.preset, tc = p.train, v = p.model.video!;
  if (!(tc.steps >= 1 && Number.isInteger(tc.steps))) throw new DriftlabError(`--steps must be a positive integer, got ${tc.steps}`);
  if (!(tc.batchSize >= 1 && Number.isInteger(tc.batchSize))) throw new DriftlabError(`--batch-size must be a positive integer, got ${tc.batchSize}`);
  if (!(tc.maxContextT >= 0 && tc.maxContextT < p.schedule.timesteps)) throw new DriftlabError(`--context-noise must be in 0..${p.schedule.timesteps - 1}, got ${tc.maxContextT}`);
  if (modelFrameSize(p.data) !== p.model.sampleSize) {
    throw new DriftlabError(`data frames are ${modelFrameSize(p.data)}px (canvas ${p.data.size} / pool ${p.data.pool}) but the model takes ${p.model.sampleSize}px`);
  }
  let initFrom: Map<string, Float32Array> | undefined;
  if (o.initImage) {
    const ck = await loadCheckpoint(o.initImage, { ema: true });
    if (ck.config.model.video) throw new DriftlabError(`${o.initImage} is a video checkpoint; --init-image wants an image checkpoint`);
    const m = ck.config.model;
    const same = ['inChannels', 'outChannels', 'layersPerBlock', 'normGroups', 'timeEmbedDim', 'timeEmbedHidden', 'attentionHeads', 'midAttention'] as const;
    const diff = same.filter((k) => m[k] !== p.model[k]);
    if (diff.length || JSON.stringify(m.blockOutChannels) !== JSON.stringify(p.model.blockOutChannels) || JSON.stringify(m.attention) !== JSON.stringify(p.model.attention)) {
      throw new DriftlabError(`${o.initImage} has another U-Net shape than ${p.name} (${diff.join(', ') || 'channels/attention'} differ); it cannot initialise it`);
    }
    initFrom = splitFlat(flatLayout(modelParamSpecs(m)), ck.ema ?? ck.params);
  }
  const config: CheckpointConfig = {
    format: CHECKPOINT_FORMAT, model: p.model, schedule: p.schedule, objective: p.objective,
    training: { preset: p.name, data: p.data, initImage: o.initImage ?? null, ...tc },
  };
  const stream = new ClipStream({
    data: p.data, seed: tc.seed, batchSize: tc.batchSize, frames: v.frames, contextFrames: v.contextFrames,
    maxContextT: tc.maxContextT, T: p.schedule.timesteps,
  });
  return runTraining({
    label: `train-video ${p.name}`, config, hyper: tc, stream, itemsPerStep: tc.batchSize * v.frames, total: tc.steps,
    out: o.out, resume: o.resume, overwrite: o.overwrite, workers: o.workers, backend: o.backend, minutes: o.minutes,
    quiet: o.quiet, onStep: o.onStep, initFrom,
  });
}
