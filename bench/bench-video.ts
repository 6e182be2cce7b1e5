/**
 * Video rows of `npm run bench`: the mmnist-small space-time U-Net (32x32 frames, windows of 8).
 *   train clips/s  = clips per step / seconds per full training step (whole batch, --workers)
 *   fwd frames/s   = frames per no-grad forward / seconds (tfjs, and onnx when it loads)
 * Median of --iters timed iterations after --warmup. Then rollout frames/s per corrector
 * (N = 4 rollouts, DDIM 10 steps per frame, chunk 1) on --rollout-engines tfjs,onnx (--rollouts no
 * skips them).
 *   --only train   the training rows alone: tfjs with --workers workers (grad, clip, AdamW), and
 *                  the onnx engine's whole step (with EMA) as one session x all cores' threads
 *                  and as --workers data-parallel sessions x 1 thread (engine/onnx-train-dp.ts),
 *                  the three interleaved, the order rotated each iteration
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, BackendName } from '../src/backend.js';
import { UNetModel } from '../src/diffusion/model.js';
import { lossAndGrad } from '../src/diffusion/grad.js';
import { AdamW, clipGradNorm } from '../src/diffusion/optim.js';
import { makeSchedule } from '../src/diffusion/schedule.js';
import { GradWorkerPool } from '../src/diffusion/workers.js';
import { exportOnnx } from '../src/engine/export.js';
import { OnnxUNet } from '../src/engine/onnx-engine.js';
import { OnnxTrainEngine } from '../src/engine/onnx-train.js';
import { DEFAULT_ADAMW } from '../src/diffusion/optim.js';
import type { TrainBatch } from '../src/diffusion/grad.js';
import { ClipStream } from '../src/video/clips.js';
import { getVideoPreset } from '../src/video/presets.js';
import { Rng } from '../src/util/rng.js';
import { CHECKPOINT_FORMAT, saveCheckpoint } from '../src/diffusion/checkpoint.js';
import { loadPipeline } from '../src/diffusion/pipeline.js';
import { makeCorrector } from '../src/drift/correctors/index.js';
import { correctorContext } from '../src/drift/context.js';
import { rollout } from '../src/video/rollout.js';
import { MovingMnist } from '../datasets/moving-mnist/index.js';
import { clipWindow } from '../src/video/clips.js';

const argv = process.argv;
const opt = (n: string, d: string) => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1] : d);
const median = (v: number[]) => { const s = [...v].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

async function timeIt(label: string, warmup: number, iters: number, fn: () => Promise<void> | void): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < iters; i++) { const t0 = performance.now(); await fn(); ms.push(performance.now() - t0); }
  process.stderr.write(`  ${label}: median ${median(ms).toFixed(0)} ms over ${iters}\n`);
  return median(ms);
}

async function main() {
  const backend = opt('backend', 'auto') as BackendName;
  const iters = Number(opt('iters', '10')), warmup = Number(opt('warmup', '3'));
  const workers = Number(opt('workers', String(os.availableParallelism())));
  const info = await initBackend(backend);
  const p = getVideoPreset(opt('preset', 'mmnist-small'));
  const v = p.model.video!, S = p.model.sampleSize, F = v.frames, B = p.train.batchSize;
  const model = new UNetModel(p.model, 0);
  const stream = new ClipStream({ data: p.data, seed: 0, batchSize: B, frames: F, contextFrames: v.contextFrames, maxContextT: 0, T: 1000 });
  const batch = stream.next(new Rng(0));
  const schedule = makeSchedule(p.schedule);
  const size = model.layout.size, params = model.getFlat(), grad = new Float32Array(size), adam = new AdamW(size);
  const rows: Record<string, unknown>[] = [];
  if (opt('only', 'all') === 'train') {
    await trainRows(p, batch, params, workers, backend, warmup, iters, rows);
    return report(p, model, info.line, iters, warmup, rows);
  }
  const msTrain1 = await timeIt(`train step, ${B} clips x ${F} frames, in-process`, warmup, iters, () => {
    grad.fill(0); lossAndGrad(model, schedule, p.objective, batch, 1, grad); clipGradNorm(grad, 1); adam.step(params, grad); model.setFlat(params);
  });
  rows.push({ what: 'video train', engine: 'tfjs', threads: 1, clipsPerSec: (B * 1000) / msTrain1 });
  if (workers > 1) {
    const pool = await GradWorkerPool.create(workers, { backend, model: p.model, schedule: p.schedule, objective: p.objective, size });
    const ms = await timeIt(`train step, ${workers} workers`, warmup, iters, async () => { await pool.lossAndGrad(params, batch, grad); clipGradNorm(grad, 1); adam.step(params, grad); });
    rows.push({ what: 'video train', engine: 'tfjs', threads: workers, clipsPerSec: (B * 1000) / ms });
    await pool.close();
  }
  const N = B * F;
  const x = tf.tensor4d(batch.x0, [N, S, S, 1]), t = tf.tensor1d(Float32Array.from(batch.t));
  const msFwd = await timeIt(`forward, ${N} frames, tfjs`, warmup, iters, () => { tf.tidy(() => { model.forward(x, t).dataSync(); }); });
  rows.push({ what: 'video forward', engine: 'tfjs', threads: 1, framesPerSec: (N * 1000) / msFwd });
  try {
    for (const threads of [1, os.availableParallelism()]) {
      const unet = await OnnxUNet.create(exportOnnx(p.model, params).bytes, p.model, { threads });
      const tt = Float32Array.from(batch.t);
      const ms = await timeIt(`forward, ${N} frames, onnx ${threads} thread(s)`, warmup, iters, async () => { await unet.run(batch.x0, N, tt); });
      rows.push({ what: 'video forward', engine: 'onnx', threads, framesPerSec: (N * 1000) / ms });
      await unet.release();
    }
  } catch (e) {
    process.stderr.write(`  onnx rows skipped: ${(e as Error).message}\n`);
  }
  // rollout throughput per corrector: N rollouts, DDIM steps per call, one frame kept per call
  if (opt('rollouts', 'yes') !== 'no') {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'driftlab-bench-'));
    try {
      const ck = path.join(tmp, 'ckpt');
      await saveCheckpoint(ck, { config: { format: CHECKPOINT_FORMAT, model: p.model, schedule: p.schedule, objective: p.objective, training: { data: p.data } }, params });
      const RN = 4, steps = 10, horizon = Number(opt('horizon', '8'));
      for (const engine of opt('rollout-engines', 'tfjs,onnx').split(',') as ('tfjs' | 'onnx')[]) {
        let pipe;
        try { pipe = await loadPipeline(ck, 'model', { engine }); } catch (e) { process.stderr.write(`  rollout ${engine} skipped: ${(e as Error).message}\n`); continue; }
        for (const run of ['warm-up', 'none', 'context-noise', 'renoise', 'kalman', 'controller']) {
          const name = run === 'warm-up' ? 'none' : run;
          const rng = new Rng(0);
          const ctx = correctorContext(pipe, rng);
          const corr = makeCorrector(name, ctx, name === 'renoise' ? { t: 200, steps: 5 } : {});
          if (name === 'kalman') {
            const mm = new MovingMnist({ ...p.data, split: 'train' }, 0);
            const m = 20, T = 12;
            const clips = { data: new Float32Array(m * T * S * S), m, t: T, s: S };
            for (let k = 0; k < m; k++) clips.data.set(clipWindow(mm, p.data.pool, k, T), k * T * S * S);
            await corr.fit!(clips, { seed: 0 });
          }
          const t0 = performance.now();
          await rollout({ pipeline: pipe, corrector: corr, out: path.join(tmp, `${engine}-${run}`), checkpoint: ck, correctorRng: rng, quiet: true,
            rollouts: RN, horizon, context: v.contextFrames, chunk: 1, sampler: 'ddim', steps, eta: 0, seed: 0 });
          const fps = (RN * horizon) / ((performance.now() - t0) / 1000);
          if (run === 'warm-up') continue;
          process.stderr.write(`  rollout ${engine} ${name}: ${fps.toFixed(1)} frames/s\n`);
          rows.push({ what: 'rollout', engine, corrector: name, rollouts: RN, ddimSteps: steps, chunk: 1, horizon, framesPerSec: fps });
        }
        await pipe.dispose();
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  report(p, model, info.line, iters, warmup, rows);
}

type Preset = ReturnType<typeof getVideoPreset>;

async function trainRows(p: Preset, batch: TrainBatch, params: Float32Array, workers: number, backend: BackendName, warmup: number, iters: number, rows: Record<string, unknown>[]) {
  const B = p.train.batchSize, F = p.model.video!.frames, size = params.length;
  const config = { format: CHECKPOINT_FORMAT, model: p.model, schedule: p.schedule, objective: p.objective };
  const state = () => ({ params: params.slice(), ema: params.slice(), m: new Float32Array(size), v: new Float32Array(size), adamStep: 0 });
  const cores = os.availableParallelism();
  const arms: { label: string; engine: string; threads: number; step: () => Promise<unknown>; close: () => Promise<void> }[] = [];
  const pool = await GradWorkerPool.create(workers, { backend, model: p.model, schedule: p.schedule, objective: p.objective, size });
  const tp = params.slice(), grad = new Float32Array(size), adam = new AdamW(size);
  arms.push({ label: `tfjs ${workers} workers`, engine: 'tfjs', threads: workers, step: async () => { await pool.lossAndGrad(tp, batch, grad); clipGradNorm(grad, 1); adam.step(tp, grad); }, close: () => pool.close() });
  const settings = { lr: 1e-4, gradClip: 1, emaDecay: 0.9995 };
  for (const [w, th] of [[1, cores], [workers, 1]]) {
    const e = await OnnxTrainEngine.create({ config, adam: DEFAULT_ADAMW, state: state(), rows: B * F, workers: w, backend, threads: th, say: null });
    arms.push({ label: `onnx ${w} session${w > 1 ? 's' : ''} x ${th} thread${th > 1 ? 's' : ''}`, engine: 'onnx', threads: w * th, step: () => e.step(batch, settings), close: () => e.close() });
  }
  for (let i = 0; i < warmup; i++) for (const a of arms) await a.step();
  const ms = arms.map(() => [] as number[]);
  for (let i = 0; i < iters; i++) {
    for (let j = 0; j < arms.length; j++) {
      const k = (i + j) % arms.length;
      const t0 = performance.now();
      await arms[k].step();
      ms[k].push(performance.now() - t0);
    }
  }
  arms.forEach((a, k) => {
    const paired = median(ms[k].map((v, i) => v / ms[0][i])); // per-round time ratio to tfjs workers
    process.stderr.write(`  train step, ${B} clips x ${F} frames, ${a.label}: median ${median(ms[k]).toFixed(0)} ms over ${iters} (interleaved); per-round time ratio to tfjs, median ${paired.toFixed(3)}\n`);
    rows.push({ what: 'video train', engine: a.label, threads: a.threads, clipsPerSec: (B * 1000) / median(ms[k]), msMedian: median(ms[k]), pairedRatioToTfjs: paired, msAll: ms[k] });
  });
  for (const a of arms) await a.close();
}

function report(p: Preset, model: UNetModel, backendLine: string, iters: number, warmup: number, rows: Record<string, unknown>[]) {
  const v = p.model.video!, S = p.model.sampleSize, F = v.frames, B = p.train.batchSize;
  const result = {
    preset: p.name, frames: F, size: S, clipsPerStep: B, params: model.numParams, backend: backendLine, cores: os.availableParallelism(),
    cpu: os.cpus()[0]?.model, node: process.version, date: new Date().toISOString(), iters, warmup,
    command: `node dist/bench/bench-video.js ${argv.slice(2).join(' ')}`.trim(), rows,
  };
  process.stdout.write(`\n${p.name} space-time U-Net (${model.numParams.toLocaleString('en-US')} params), ${S}x${S}, windows of ${F}, ${backendLine}\n`);
  for (const r of rows) {
    const val = r.clipsPerSec !== undefined ? `${(r.clipsPerSec as number).toFixed(2)} clips/s` : `${(r.framesPerSec as number).toFixed(1)} frames/s`;
    const who = r.what === 'rollout' ? `${String(r.corrector).padEnd(13)} N=${r.rollouts}, DDIM ${r.ddimSteps}/frame` : `${String(r.threads).padStart(2)} thread(s)`;
    process.stdout.write(`  ${String(r.what).padEnd(14)} ${String(r.engine).padEnd(27)} ${who}  ${val}\n`);
  }
  const out = opt('out', path.join('bench', 'results', 'video-latest.json'));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(`written ${out}\n`);
  model.dispose();
}

main().catch((e) => { process.stderr.write(`bench-video failed: ${(e as Error).message}\n`); process.exit(1); });
