/**
 * The image DDPM training loop (Ho et al. 2020, Algorithm 1) with AdamW, grad clipping, EMA,
 * classifier-free label dropout, data-parallel workers, atomic checkpoints and exact resume.
 *
 * All randomness (data order, timesteps, noise, label dropout) comes from driftlab's seeded
 * generators on the main thread, so a resumed run replays the same stream.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BackendName } from '../backend.js';
import { DriftlabError } from '../util/errors.js';
import { Progress } from '../util/progress.js';
import { Rng } from '../util/rng.js';
import { BatchSource, MnistBatches } from '../../datasets/mnist/index.js';
import { CHECKPOINT_FORMAT, CheckpointConfig, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { TrainBatch, lossAndGrad } from './grad.js';
import { UNetModel } from './model.js';
import { AdamW, DEFAULT_ADAMW, clipGradNorm, emaDecay, emaUpdate } from './optim.js';
import { Preset, TrainConfig } from './presets.js';
import { makeSchedule } from './schedule.js';
import { GradWorkerPool } from './workers.js';

export interface TrainOptions {
  preset: Preset;
  data: BatchSource;
  out: string;
  resume?: boolean;
  /** overwrite an existing checkpoint folder instead of refusing */
  overwrite?: boolean;
  workers: number;
  backend: BackendName;
  /** stop (with a checkpoint) after this many minutes of wall time */
  minutes?: number;
  quiet?: boolean;
  /** called after each step (tests) */
  onStep?: (step: number, loss: number) => void;
}

export interface TrainResult {
  steps: number;
  lastLoss: number;
  losses: number[];
  stoppedEarly: boolean;
  seconds: number;
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const { preset, out } = opts;
  const tc: TrainConfig = preset.train;
  if (!(tc.steps >= 1) || !Number.isInteger(tc.steps)) throw new DriftlabError(`--steps must be a positive integer, got ${tc.steps}`);
  if (!(tc.batchSize >= 1) || !Number.isInteger(tc.batchSize)) throw new DriftlabError(`--batch-size must be a positive integer, got ${tc.batchSize}`);
  if (!(tc.classDropout >= 0 && tc.classDropout < 1)) throw new DriftlabError(`--class-dropout must be in [0,1), got ${tc.classDropout}`);
  const hasCkpt = fs.existsSync(path.join(out, 'config.json')) || fs.existsSync(path.join(`${out}.prev`, 'config.json'));
  if (hasCkpt && !opts.resume && !opts.overwrite) {
    throw new DriftlabError(`${out} already holds a checkpoint; pass --resume to continue it or --overwrite to start over`);
  }
  const config: CheckpointConfig = {
    format: CHECKPOINT_FORMAT, model: preset.model, schedule: preset.schedule, objective: preset.objective,
    training: { preset: preset.name, ...tc },
  };
  const schedule = makeSchedule(preset.schedule);
  const model = new UNetModel(preset.model, tc.seed);
  const size = model.layout.size;
  let params: Float32Array = model.getFlat();
  let ema: Float32Array = params.slice();
  const adam = new AdamW(size, { ...DEFAULT_ADAMW, lr: tc.lr, weightDecay: tc.weightDecay });
  const data = new MnistBatches(opts.data, { batchSize: tc.batchSize, seed: tc.seed, flip: tc.flip });
  const rng = new Rng(tc.seed).fork('train-noise');
  let step = 0;
  const logPath = path.join(out, 'train-log.jsonl');
  if (opts.resume && hasCkpt) {
    const ck = await loadCheckpoint(out, { optimizer: true });
    if (JSON.stringify(ck.config.model) !== JSON.stringify(preset.model)) {
      throw new DriftlabError(`${out} was trained with another model config; resume it with its own preset or choose another --out`);
    }
    const st = ck.trainState;
    if (!st || !ck.optimizer || !ck.ema) throw new DriftlabError(`${out} has no optimizer/train state (a shipped checkpoint?); it cannot be resumed`);
    params = ck.params;
    ema = ck.ema;
    adam.m.set(ck.optimizer.m);
    adam.v.set(ck.optimizer.v);
    adam.t = st.adamStep;
    step = st.step;
    rng.setState(st.rng);
    data.setState(st.data);
    model.setFlat(params);
    truncateLog(logPath, step);
  } else {
    fs.mkdirSync(out, { recursive: true });
    if (fs.existsSync(logPath)) fs.rmSync(logPath);
  }
  const total = tc.epochs ? Math.ceil((tc.epochs * opts.data.n) / tc.batchSize) : tc.steps;
  const T = schedule.T;
  const D = preset.model.sampleSize * preset.model.sampleSize * preset.model.inChannels;
  const K = preset.model.numClasses;
  const pool = opts.workers > 1
    ? await GradWorkerPool.create(opts.workers, { backend: opts.backend, model: preset.model, schedule: preset.schedule, objective: preset.objective, size })
    : null;
  const grad = new Float32Array(size);
  const progress = opts.quiet ? null : new Progress({ total, label: `train ${preset.name}`, unit: 'step' });
  if (progress && step > 0) progress.tick(step);
  const started = Date.now();
  const deadline = opts.minutes ? started + opts.minutes * 60_000 : Infinity;
  const losses: number[] = [];
  let lastSaved = step;
  const save = async () => {
    await saveCheckpoint(out, {
      config, params, ema, optimizer: { m: adam.m, v: adam.v },
      trainState: { step, adamStep: adam.t, rng: rng.getState(), data: data.state(), savedAt: new Date().toISOString() },
    });
    lastSaved = step;
  };
  const log = fs.openSync(logPath, 'a');
  let stoppedEarly = false;
  try {
    while (step < total) {
      const t0 = performance.now();
      const b = data.next();
      const t = new Int32Array(tc.batchSize);
      for (let i = 0; i < t.length; i++) t[i] = rng.int(T);
      const eps = rng.normals(tc.batchSize * D);
      let labels: Int32Array | undefined;
      if (K > 0) {
        labels = new Int32Array(tc.batchSize);
        for (let i = 0; i < labels.length; i++) labels[i] = rng.uniform() < tc.classDropout || b.labels[i] < 0 ? K : b.labels[i];
      }
      const batch: TrainBatch = { x0: b.x, eps, t, labels };
      let loss: number;
      if (pool) loss = await pool.lossAndGrad(params, batch, grad);
      else {
        grad.fill(0);
        loss = lossAndGrad(model, schedule, preset.objective, batch, 1, grad).loss;
      }
      if (!Number.isFinite(loss)) {
        throw new DriftlabError(`loss became ${loss} at step ${step + 1}; stopped. The last good checkpoint (step ${lastSaved}) is kept in ${out}. Try a lower --lr`);
      }
      const norm = clipGradNorm(grad, tc.gradClip);
      const lr = tc.lrWarmup > 0 ? tc.lr * Math.min(1, (step + 1) / tc.lrWarmup) : tc.lr;
      adam.step(params, grad, lr);
      emaUpdate(ema, params, emaDecay(tc.emaDecay, adam.t - 1));
      if (!pool) model.setFlat(params);
      step += 1;
      losses.push(loss);
      const dt = (performance.now() - t0) / 1000;
      fs.writeSync(log, JSON.stringify({ step, loss, gradNorm: norm, lr, imgPerSec: tc.batchSize / dt, time: new Date().toISOString() }) + '\n');
      progress?.tick(1, { loss: loss.toFixed(4), 'img/s': (tc.batchSize / dt).toFixed(1) });
      opts.onStep?.(step, loss);
      if (step % tc.checkpointEvery === 0 || step === total) await save();
      if (Date.now() > deadline) {
        stoppedEarly = step < total;
        break;
      }
    }
    if (lastSaved !== step) await save();
  } finally {
    fs.closeSync(log);
    progress?.done();
    await pool?.close();
    model.dispose();
  }
  return { steps: step, lastLoss: losses.at(-1) ?? NaN, losses, stoppedEarly, seconds: (Date.now() - started) / 1000 };
}

/** Drop log lines written after the checkpoint we resume from (a kill loses at most one interval). */
function truncateLog(logPath: string, step: number): void {
  if (!fs.existsSync(logPath)) return;
  const keep = fs.readFileSync(logPath, 'utf8').split('\n').filter((l) => {
    if (!l.trim()) return false;
    try { return JSON.parse(l).step <= step; } catch { return false; }
  });
  fs.writeFileSync(logPath, keep.map((l) => l + '\n').join(''));
}
