/**
 * npm run bench: throughput of the reference network (shared/bench/UNET_SPEC.md) at batch 64.
 *
 *   train img/s = 64 / seconds per full training step (forward, backward, clip, AdamW, EMA)
 *   fwd img/s   = 64 / seconds per no-grad forward
 *   onnx fwd    the same forward exported to ONNX, run by onnxruntime-node (1 and 2 intra-op threads),
 *               float32 and int8 (engine/quantize.ts: dynamic, and static calibrated on 512 noisy
 *               MNIST digits), the three timed interleaved (A/B/C per iteration)
 *   ddim50      seconds to sample 64 digits with DDIM-50 on each engine (noise and steps on tfjs)
 *   onnx train  the whole step (forward, backward, clip, AdamW, EMA) on onnxruntime
 *               (engine/onnx-train.ts), state kept in onnxruntime tensors: one session x 1 and
 *               x --workers intra-op threads (the step as one graph), and --workers data-parallel
 *               sessions x 1 thread (engine/onnx-train-dp.ts: gradient graphs in worker threads,
 *               the optimizer graph on the main thread), all with blocked-layout Convs where
 *               onnxruntime has them, and the data-parallel mode with plain Convs (as before
 *               session 10); the four timed interleaved
 * Median of --iters timed iterations after --warmup. Rows: in-process (1 thread) and the
 * data-parallel trainer with --workers threads; --only fwd|train|onnx|onnx-train|sample picks a
 * group (train includes onnx-train).
 * Prints a table and writes JSON (--out).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, BackendName } from '../src/backend.js';
import { SPEC_UNET } from '../src/diffusion/config.js';
import { TrainBatch, lossAndGrad } from '../src/diffusion/grad.js';
import { UNetModel } from '../src/diffusion/model.js';
import { DEFAULT_OBJECTIVE } from '../src/diffusion/objective.js';
import { AdamW, DEFAULT_ADAMW, clipGradNorm, emaDecay, emaUpdate } from '../src/diffusion/optim.js';
import { DEFAULT_SCHEDULE, makeSchedule } from '../src/diffusion/schedule.js';
import { GradWorkerPool } from '../src/diffusion/workers.js';
import { denoiserOf } from '../src/diffusion/pipeline.js';
import { sample } from '../src/diffusion/samplers.js';
import { exportOnnx } from '../src/engine/export.js';
import { OnnxUNet, loadOrt } from '../src/engine/onnx-engine.js';
import { OnnxTrainEngine, trainGraphBlock } from '../src/engine/onnx-train.js';
import { CHECKPOINT_FORMAT } from '../src/diffusion/checkpoint.js';
import { decodeModel } from '../src/engine/onnx-proto.js';
import { calibrate, mnistCalibration, quantizeOnnxBytes } from '../src/engine/quantize.js';
import { Rng } from '../src/util/rng.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}

const median = (v: number[]) => { const s = [...v].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

async function timeIt(label: string, warmup: number, iters: number, fn: () => Promise<void> | void): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  process.stderr.write(`  ${label}: median ${median(ms).toFixed(0)} ms over ${iters}\n`);
  return ms;
}

async function main() {
  const backend = arg('backend', 'auto') as BackendName;
  const iters = Number(arg('iters', '10'));
  const warmup = Number(arg('warmup', '3'));
  const workers = Number(arg('workers', String(os.availableParallelism())));
  const only = arg('only', 'all');
  const B = 64;
  const info = await initBackend(backend);
  const schedule = makeSchedule(DEFAULT_SCHEDULE);
  const model = new UNetModel(SPEC_UNET, 0);
  const rng = new Rng(0);
  const D = 28 * 28;
  const batch: TrainBatch = { x0: rng.normals(B * D), eps: rng.normals(B * D), t: Int32Array.from({ length: B }, () => rng.int(1000)) };
  const rows: Record<string, unknown>[] = [];
  const size = model.layout.size;
  const params = model.getFlat();
  const ema = params.slice();
  const grad = new Float32Array(size);
  const adam = new AdamW(size);
  const update = () => {
    clipGradNorm(grad, 1.0);
    adam.step(params, grad);
    emaUpdate(ema, params, emaDecay(0.9995, adam.t - 1));
  };
  if (only === 'all' || only === 'fwd') {
    const x = tf.tensor4d(batch.x0, [B, 28, 28, 1]);
    const t = tf.tensor1d(Float32Array.from(batch.t));
    const ms = await timeIt('forward, batch 64, 1 thread', warmup, iters, () => { tf.tidy(() => { model.forward(x, t).dataSync(); }); });
    rows.push({ what: 'forward', engine: 'tfjs', threads: 1, imgPerSec: (B * 1000) / median(ms), msMedian: median(ms) });
    x.dispose(); t.dispose();
  }
  const ort = only === 'all' || only === 'onnx' || only === 'sample' ? await loadOrt() : null;
  if (ort && !ort.ort) process.stderr.write(`  onnx rows skipped: ${ort.error}\n`);
  const onnxBytes = ort?.ort ? exportOnnx(SPEC_UNET, params).bytes : null;
  if (onnxBytes && (only === 'all' || only === 'onnx')) {
    const t = new Float32Array(B).fill(500);
    const ranges = await calibrate(decodeModel(onnxBytes), mnistCalibration(SPEC_UNET, DEFAULT_SCHEDULE, 512, B, 0), SPEC_UNET);
    const files: Record<string, Uint8Array> = {
      float32: onnxBytes,
      'int8 dynamic': quantizeOnnxBytes(onnxBytes, 'dynamic').bytes,
      'int8 static': quantizeOnnxBytes(onnxBytes, 'static', { ranges }).bytes,
    };
    // One session at a time: onnxruntime's idle intra-op threads spin, so sessions measured side
    // by side (interleaved) steal each other's cores and understate the 2-thread figures.
    for (const threads of [1, 2]) {
      for (const [k, b] of Object.entries(files)) {
        const u = await OnnxUNet.create(b, SPEC_UNET, { threads });
        const v = await timeIt(`onnx ${k} forward, batch 64, ${threads} thread(s)`, warmup, iters, async () => { await u.run(batch.x0, B, t); });
        rows.push({ what: 'forward', engine: 'onnx', precision: k, threads, imgPerSec: (B * 1000) / median(v), msMedian: median(v), fileMB: b.length / 1e6 });
        await u.release();
      }
    }
  }
  if (only === 'all' || only === 'sample') {
    // 64 digits, DDIM 50 steps, eta 0: what `driftlab sample --steps 50 --n 64` runs per batch
    const ddim = async (net: Parameters<typeof sample>[0]) => {
      const x = await sample(net, schedule, DEFAULT_OBJECTIVE.prediction, [B, 28, 28, 1], { sampler: 'ddim', steps: 50, eta: 0, clipX0: true, rng: new Rng(1) });
      await x.data();
      x.dispose();
    };
    const sIters = Math.max(1, Math.min(iters, 3)); // each run is 50 forwards: no separate warm-up runs
    const warm = async (net: Parameters<typeof sample>[0]) => { const x = tf.zeros([B, 28, 28, 1]) as tf.Tensor4D; (await net(x, 999)).dispose(); x.dispose(); };
    await warm(denoiserOf(model));
    const mt = await timeIt('DDIM-50, 64 digits, tfjs', 0, sIters, () => ddim(denoiserOf(model)));
    rows.push({ what: 'ddim50', engine: 'tfjs', threads: 1, seconds: median(mt) / 1000, imgPerSec: (B * 1000) / median(mt), msMedian: median(mt) });
    if (onnxBytes) {
      const threads = os.availableParallelism();
      const unet = await OnnxUNet.create(onnxBytes, SPEC_UNET, { threads });
      await warm(unet.denoiser());
      const mo = await timeIt(`DDIM-50, 64 digits, onnx ${threads} thread(s)`, 0, sIters, () => ddim(unet.denoiser()));
      rows.push({ what: 'ddim50', engine: 'onnx', threads, seconds: median(mo) / 1000, imgPerSec: (B * 1000) / median(mo), msMedian: median(mo) });
      await unet.release();
    }
  }
  if (only === 'all' || only === 'train') {
    const ms = await timeIt('train step, batch 64, in-process', warmup, iters, () => {
      grad.fill(0);
      lossAndGrad(model, schedule, DEFAULT_OBJECTIVE, batch, 1, grad);
      update();
      model.setFlat(params);
    });
    rows.push({ what: 'train', engine: 'tfjs', threads: 1, imgPerSec: (B * 1000) / median(ms), msMedian: median(ms) });
    if (workers > 1) {
      const pool = await GradWorkerPool.create(workers, { backend, model: SPEC_UNET, schedule: DEFAULT_SCHEDULE, objective: DEFAULT_OBJECTIVE, size });
      const msw = await timeIt(`train step, batch 64, ${workers} workers`, warmup, iters, async () => {
        await pool.lossAndGrad(params, batch, grad);
        update();
      });
      rows.push({ what: 'train', engine: 'tfjs', threads: workers, imgPerSec: (B * 1000) / median(msw), msMedian: median(msw) });
      await pool.close();
    }
  }
  if (only === 'all' || only === 'train' || only === 'onnx-train') {
    const status = await loadOrt();
    if (!status.ort) process.stderr.write(`  onnx train rows skipped: ${status.error}\n`);
    else {
      // one session x 1 thread, one session x --workers threads, --workers data-parallel sessions x 1 thread:
      // built side by side and timed interleaved, the order rotated each iteration (a 2-thread
      // session's idle pool spins for a moment after its run: that cost falls on each mode in turn)
      // (and the data-parallel mode with plain Convs, as before the blocked-layout kernels: the A/B of session 10)
      const modes = [{ sessions: 1, threads: 1, nchwc: true }, { sessions: 1, threads: workers, nchwc: true }, { sessions: workers, threads: 1, nchwc: true }, { sessions: workers, threads: 1, nchwc: false }]
        .filter((m, i, all) => all.findIndex((x) => x.sessions === m.sessions && x.threads === m.threads && x.nchwc === m.nchwc) === i);
      const engines = [];
      for (const m of modes) {
        engines.push(await OnnxTrainEngine.create({
          config: { format: CHECKPOINT_FORMAT, model: SPEC_UNET, schedule: DEFAULT_SCHEDULE, objective: DEFAULT_OBJECTIVE }, adam: DEFAULT_ADAMW,
          state: { params: params.slice(), ema: params.slice(), m: new Float32Array(size), v: new Float32Array(size), adamStep: 0 },
          rows: B, workers: m.sessions, backend, threads: m.threads, nchwc: m.nchwc,
        }));
      }
      const settings = { lr: 1e-4, gradClip: 1, emaDecay: 0.9995 };
      for (let i = 0; i < warmup; i++) for (const e of engines) await e.step(batch, settings);
      const ms = modes.map(() => [] as number[]);
      for (let i = 0; i < iters; i++) {
        for (let j = 0; j < modes.length; j++) {
          const k = (i + j) % modes.length;
          const t0 = performance.now();
          await engines[k].step(batch, settings);
          ms[k].push(performance.now() - t0);
        }
      }
      // the machine's speed may drift over a sitting: each round's ratio to the one-session all-threads mode, then the median
      const base = modes.findIndex((m) => m.sessions === 1 && m.threads === workers && m.nchwc);
      const block = await trainGraphBlock({});
      modes.forEach((m, k) => {
        const label = `${m.sessions} session${m.sessions > 1 ? 's' : ''} x ${m.threads} thread${m.threads > 1 ? 's' : ''}${m.nchwc && block ? '' : ', plain Convs'}`;
        const paired = base >= 0 ? median(ms[k].map((v, i) => v / ms[base][i])) : NaN;
        process.stderr.write(`  onnx train step, batch 64, ${label}: median ${median(ms[k]).toFixed(0)} ms over ${iters} (interleaved); per-round time ratio to 1 session x ${workers} threads, median: ${paired.toFixed(3)}\n`);
        rows.push({ what: 'train', engine: `onnx ${label}`, sessions: m.sessions, threadsPerSession: m.threads, threads: m.sessions * m.threads, nchwcBlock: m.nchwc ? block : 0, imgPerSec: (B * 1000) / median(ms[k]), msMedian: median(ms[k]), pairedRatio: paired, msAll: ms[k] });
      });
      for (const e of engines) await e.close();
    }
  }
  const result = {
    spec: 'shared/bench/UNET_SPEC.md', batch: B, params: model.numParams, backend: info.line, cpus: os.cpus()[0]?.model, cores: os.availableParallelism(),
    node: process.version, date: new Date().toISOString(), command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(), iters, warmup, rows,
  };
  process.stdout.write(`\nreference U-Net (${model.numParams.toLocaleString('en-US')} params), batch ${B}, ${info.line}\n`);
  for (const r of rows) {
    const engine = r.precision && r.precision !== 'float32' ? `${r.engine} ${r.precision}` : r.engine;
    const head = `  ${String(r.what).padEnd(8)} ${String(engine).padEnd(28)} ${String(r.threads).padStart(2)} thread(s)`;
    if (r.what === 'ddim50') process.stdout.write(`${head}  ${(r.seconds as number).toFixed(2).padStart(7)} s for 64 digits (${(r.imgPerSec as number).toFixed(1)} img/s)\n`);
    else process.stdout.write(`${head}  ${(r.imgPerSec as number).toFixed(1).padStart(7)} img/s  (median ${(r.msMedian as number).toFixed(0)} ms/step)\n`);
  }
  const out = arg('out', path.join('bench', 'results', 'latest.json'));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(`written ${out}\n`);
  model.dispose();
}

main().catch((e) => { process.stderr.write(`bench failed: ${(e as Error).message}\n`); process.exit(1); });
