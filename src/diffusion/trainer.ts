/**
 * The training loop shared by image and video models (Ho et al. 2020, Algorithm 1): AdamW,
 * grad clipping, EMA, data-parallel workers, atomic checkpoints and exact resume.
 *
 * What a batch is comes from a BatchStream; all randomness (timesteps, noise, dropout) is drawn
 * from the loop's seeded Rng on the main thread, so a resumed run replays the same stream.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BackendName } from '../backend.js';
import { DriftlabError } from '../util/errors.js';
import { Progress } from '../util/progress.js';
import { Rng } from '../util/rng.js';
import { CheckpointConfig, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { TrainBatch, lossAndGrad } from './grad.js';
import { UNetModel, joinFlat } from './model.js';
import { AdamW, DEFAULT_ADAMW, clipGradNorm, emaDecay, emaUpdate } from './optim.js';
import { makeSchedule } from './schedule.js';
import { GradWorkerPool } from './workers.js';

/** Where batches come from; its state (data order) is saved with every checkpoint. */
export interface BatchStream {
  next(rng: Rng): TrainBatch;
  state(): unknown;
  setState(s: any): void;
}

export interface Hyper {
  lr: number;
  lrWarmup: number;
  weightDecay: number;
  gradClip: number;
  emaDecay: number;
  checkpointEvery: number;
  seed: number;
}

/** Where a training run writes and how it runs: shared by image, video and generic runs. */
export interface RunCommon {
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

export interface RunOptions extends RunCommon {
  label: string;
  config: CheckpointConfig;
  hyper: Hyper;
  /** total optimizer steps */
  total: number;
  stream: BatchStream;
  /** images (or frames) per step, for the img/s figure */
  itemsPerStep: number;
  /** starting weights by name for a fresh run (the rest keep their initialisation) */
  initFrom?: Map<string, Float32Array>;
  /** a cheap measurement of the EMA weights every `every` steps, appended to `file` in the checkpoint folder */
  check?: TrainCheck;
}

/** What a run measures while it trains (the video model's context use): one JSON line per check. */
export interface TrainCheck {
  every: number;
  /** file name inside the checkpoint folder, e.g. context-use.jsonl */
  file: string;
  run(ema: Float32Array, step: number): Promise<{ record: Record<string, unknown>; line: string }>;
}

export interface TrainResult {
  steps: number;
  lastLoss: number;
  losses: number[];
  stoppedEarly: boolean;
  seconds: number;
}

export function checkpointExists(out: string): boolean {
  return fs.existsSync(path.join(out, 'config.json')) || fs.existsSync(path.join(`${out}.prev`, 'config.json'));
}

export async function runTraining(o: RunOptions): Promise<TrainResult> {
  const { out, hyper: h, config } = o;
  const hasCkpt = checkpointExists(out);
  if (hasCkpt && !o.resume && !o.overwrite) {
    throw new DriftlabError(`${out} already holds a checkpoint; pass --resume to continue it or --overwrite to start over`);
  }
  const schedule = makeSchedule(config.schedule);
  const model = new UNetModel(config.model, h.seed);
  const size = model.layout.size;
  let params: Float32Array = model.getFlat();
  if (o.initFrom && !(o.resume && hasCkpt)) {
    const named = model.getNamed();
    for (const [k, v] of o.initFrom) if (named.has(k) && named.get(k)!.length === v.length) named.set(k, v);
    params = joinFlat(model.layout, named);
    model.setFlat(params);
  }
  let ema: Float32Array = params.slice();
  const adam = new AdamW(size, { ...DEFAULT_ADAMW, lr: h.lr, weightDecay: h.weightDecay });
  const rng = new Rng(h.seed).fork('train-noise');
  let step = 0;
  const logPath = path.join(out, 'train-log.jsonl');
  if (o.resume && hasCkpt) {
    const ck = await loadCheckpoint(out, { optimizer: true });
    if (JSON.stringify(ck.config.model) !== JSON.stringify(config.model)) {
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
    o.stream.setState(st.data);
    model.setFlat(params);
    truncateLog(logPath, step);
    if (o.check) truncateLog(path.join(out, o.check.file), step);
  } else {
    fs.mkdirSync(out, { recursive: true });
    if (fs.existsSync(logPath)) fs.rmSync(logPath);
    if (o.check) fs.rmSync(path.join(out, o.check.file), { force: true });
  }
  const pool = o.workers > 1
    ? await GradWorkerPool.create(o.workers, { backend: o.backend, model: config.model, schedule: config.schedule, objective: config.objective, size })
    : null;
  const grad = new Float32Array(size);
  const progress = o.quiet ? null : new Progress({ total: o.total, label: o.label, unit: 'step', initial: step });
  const started = Date.now();
  const deadline = o.minutes ? started + o.minutes * 60_000 : Infinity;
  const losses: number[] = [];
  let lastSaved = step;
  const save = async () => {
    await saveCheckpoint(out, {
      config, params, ema, optimizer: { m: adam.m, v: adam.v },
      trainState: { step, adamStep: adam.t, rng: rng.getState(), data: o.stream.state(), savedAt: new Date().toISOString() },
    });
    lastSaved = step;
  };
  const log = fs.openSync(logPath, 'a');
  let stoppedEarly = false;
  try {
    while (step < o.total) {
      const t0 = performance.now();
      const batch = o.stream.next(rng);
      let loss: number;
      if (pool) loss = await pool.lossAndGrad(params, batch, grad);
      else {
        grad.fill(0);
        loss = lossAndGrad(model, schedule, config.objective, batch, 1, grad).loss;
      }
      if (!Number.isFinite(loss)) {
        throw new DriftlabError(`loss became ${loss} at step ${step + 1}; stopped. The last good checkpoint (step ${lastSaved}) is kept in ${out}. Try a lower --lr`);
      }
      const norm = clipGradNorm(grad, h.gradClip);
      const lr = h.lrWarmup > 0 ? h.lr * Math.min(1, (step + 1) / h.lrWarmup) : h.lr;
      adam.step(params, grad, lr);
      emaUpdate(ema, params, emaDecay(h.emaDecay, adam.t - 1));
      if (!pool) model.setFlat(params);
      step += 1;
      losses.push(loss);
      const dt = (performance.now() - t0) / 1000;
      fs.writeSync(log, JSON.stringify({ step, loss, gradNorm: norm, lr, imgPerSec: o.itemsPerStep / dt, time: new Date().toISOString() }) + '\n');
      progress?.tick(1, { loss: loss.toFixed(4), 'img/s': (o.itemsPerStep / dt).toFixed(1) });
      o.onStep?.(step, loss);
      if (step % h.checkpointEvery === 0 || step === o.total) await save();
      if (o.check && step % o.check.every === 0) {
        const c = await o.check.run(ema, step);
        fs.appendFileSync(path.join(out, o.check.file), JSON.stringify({ step, ...c.record }) + '\n');
        if (!o.quiet) process.stderr.write(`\n${o.label} step ${step}: ${c.line}\n`);
      }
      if (Date.now() > deadline) {
        stoppedEarly = step < o.total;
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
