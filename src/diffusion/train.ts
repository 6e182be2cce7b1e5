/**
 * Image DDPM training on MNIST: the shared loop (trainer.ts) fed by seeded MNIST batches, with
 * timesteps, noise and classifier-free label dropout drawn per step.
 */
import { DriftlabError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { BatchSource, MnistBatches } from '../../datasets/mnist/index.js';
import { CHECKPOINT_FORMAT, CheckpointConfig } from './checkpoint.js';
import { TrainBatch } from './grad.js';
import { Preset, TrainConfig } from './presets.js';
import { BatchStream, RunCommon, TrainResult, runTraining } from './trainer.js';

export type { TrainResult } from './trainer.js';

export interface TrainOptions extends RunCommon {
  preset: Preset;
  data: BatchSource;
}

/** MNIST batches + t ~ U{0..T-1}, eps ~ N(0, I), labels dropped to the null class with p. */
class ImageStream implements BatchStream {
  private readonly data: MnistBatches;
  constructor(src: BatchSource, private readonly tc: TrainConfig, private readonly T: number, private readonly D: number, private readonly K: number) {
    this.data = new MnistBatches(src, { batchSize: tc.batchSize, seed: tc.seed, flip: tc.flip });
  }
  next(rng: Rng): TrainBatch {
    const { batchSize: B, classDropout } = this.tc;
    const b = this.data.next();
    const t = new Int32Array(B);
    for (let i = 0; i < B; i++) t[i] = rng.int(this.T);
    const eps = rng.normals(B * this.D);
    let labels: Int32Array | undefined;
    if (this.K > 0) {
      labels = new Int32Array(B);
      for (let i = 0; i < B; i++) labels[i] = rng.uniform() < classDropout || b.labels[i] < 0 ? this.K : b.labels[i];
    }
    return { x0: b.x, eps, t, labels };
  }
  state() { return this.data.state(); }
  setState(s: any) { this.data.setState(s); }
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const { preset } = opts;
  const tc: TrainConfig = preset.train;
  if (!(tc.steps >= 1) || !Number.isInteger(tc.steps)) throw new DriftlabError(`--steps must be a positive integer, got ${tc.steps}`);
  if (!(tc.batchSize >= 1) || !Number.isInteger(tc.batchSize)) throw new DriftlabError(`--batch-size must be a positive integer, got ${tc.batchSize}`);
  if (!(tc.classDropout >= 0 && tc.classDropout < 1)) throw new DriftlabError(`--class-dropout must be in [0,1), got ${tc.classDropout}`);
  const config: CheckpointConfig = {
    format: CHECKPOINT_FORMAT, model: preset.model, schedule: preset.schedule, objective: preset.objective,
    training: { preset: preset.name, ...tc },
  };
  const m = preset.model;
  const stream = new ImageStream(opts.data, tc, preset.schedule.timesteps, m.sampleSize * m.sampleSize * m.inChannels, m.numClasses);
  return runTraining({
    label: `train ${preset.name}`, config, hyper: tc, stream, itemsPerStep: tc.batchSize,
    total: tc.epochs ? Math.ceil((tc.epochs * opts.data.n) / tc.batchSize) : tc.steps,
    out: opts.out, resume: opts.resume, overwrite: opts.overwrite, workers: opts.workers, backend: opts.backend,
    engine: opts.engine, threads: opts.threads, device: opts.device, minutes: opts.minutes, quiet: opts.quiet, onStep: opts.onStep, prefetch: opts.prefetch,
  });
}
