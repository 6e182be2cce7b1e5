/**
 * Data-parallel onnx training (engine/onnx-train-dp.ts: gradient sessions in worker threads over
 * shards of whole clips, the optimizer graph on the main thread) against the single-session
 * OnnxTrainer step (the whole step in one graph) as oracle:
 *   - one step equals it (loss to 1e-6 relative, new params / moments / EMA to 1e-5 by norm) for
 *     the tiny image U-Net and the tiny video U-Net (temporal attention, and concat conditioning),
 *     with even and uneven shards (3 clips on 2 workers), a batch of another size than the built
 *     one, and a batch of fewer clips than workers;
 *   - runs are deterministic (same bytes twice) and resume across engines (tfjs <-> onnx dp);
 *   - a failing step ends every worker; 300 steps keep the RSS flat.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadBundledMnist } from '../../datasets/mnist/index.js';
import { modelParamSpecs } from '../../src/diffusion/arch.js';
import { CHECKPOINT_FORMAT, CheckpointConfig, loadCheckpoint } from '../../src/diffusion/checkpoint.js';
import type { UNetConfig } from '../../src/diffusion/config.js';
import { TrainBatch, normaliseWeights } from '../../src/diffusion/grad.js';
import { flatLayout, joinFlat } from '../../src/diffusion/model.js';
import { DEFAULT_OBJECTIVE } from '../../src/diffusion/objective.js';
import { AdamWConfig } from '../../src/diffusion/optim.js';
import { getPreset } from '../../src/diffusion/presets.js';
import { DEFAULT_SCHEDULE } from '../../src/diffusion/schedule.js';
import { train } from '../../src/diffusion/train.js';
import { StepSettings, TrainEngineOptions, TrainState } from '../../src/diffusion/train-engine.js';
import { OnnxTrainEngine, onnxLayout } from '../../src/engine/onnx-train.js';
import { OnnxDpTrainer, shardBounds } from '../../src/engine/onnx-train-dp.js';
import { getVideoPreset } from '../../src/video/presets.js';
import { trainVideo } from '../../src/video/train-video.js';
import { Rng } from '../../src/util/rng.js';
import { ensureWasm } from '../helpers/backend.js';
import { tempDir } from '../helpers/common.js';
import { once, randomParams, requireOrt, tinyImagePreset, tinyVideoPreset } from './helpers.js';

const ready = once(async () => {
  await ensureWasm();
  await requireOrt();
});
const dir = tempDir('driftlab-onnx-dp-');

const IMAGE: UNetConfig = getPreset('mnist-tiny').model;
const VIDEO: UNetConfig = getVideoPreset('mmnist-tiny').model;
const CONCAT: UNetConfig = { ...VIDEO, video: { ...VIDEO.video!, conditioning: 'concat' } };
// large lr and weight decay so that decay, bias correction and the update are all visible
const ADAM: AdamWConfig = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
const SETTINGS: StepSettings = { lr: ADAM.lr, gradClip: 1, emaDecay: 0.999 };
const SLOTS = ['params', 'm', 'v', 'ema'] as const;

function batchFor(c: UNetConfig, rows: number, seed: number): TrainBatch {
  const rng = new Rng(seed);
  const D = c.sampleSize * c.sampleSize * c.inChannels;
  const frames = c.video?.frames;
  const b: TrainBatch = { x0: rng.normals(rows * D), eps: rng.normals(rows * D), t: Int32Array.from({ length: rows }, () => rng.int(1000)), frames };
  if (c.numClasses > 0) b.labels = Int32Array.from({ length: rows }, (_, i) => (i === 0 ? c.numClasses : rng.int(c.numClasses)));
  if (frames) {
    const K = c.video!.contextFrames; // context frames carry no loss
    b.weights = normaliseWeights(Float32Array.from({ length: rows }, (_, i) => (i % frames < K ? 0 : 1)));
  }
  return b;
}

/** A state as after 6 updates: non-zero moments, EMA near the weights. */
function midRunState(c: UNetConfig, seed: number): TrainState {
  const rng = new Rng(seed);
  const params = joinFlat(flatLayout(modelParamSpecs(c)), randomParams(c, seed));
  const n = params.length;
  return {
    params, ema: params.map((p) => p + 0.01 * rng.normal()),
    m: Float32Array.from({ length: n }, () => 1e-2 * rng.normal()),
    v: Float32Array.from({ length: n }, () => 1e-4 * (0.2 + rng.normal() ** 2)), adamStep: 6,
  };
}
const copy = (s: TrainState): TrainState => ({ params: s.params.slice(), ema: s.ema.slice(), m: s.m.slice(), v: s.v.slice(), adamStep: s.adamStep });

function options(c: UNetConfig, rows: number, state: TrainState, workers: number): TrainEngineOptions {
  const config: CheckpointConfig = { format: CHECKPOINT_FORMAT, model: c, schedule: DEFAULT_SCHEDULE, objective: DEFAULT_OBJECTIVE };
  return { config, adam: ADAM, state: copy(state), rows, workers, backend: 'wasm', threads: 1, say: null };
}

function relL2(a: Float32Array, b: Float32Array): number {
  let dd = 0, rr = 0;
  for (let i = 0; i < a.length; i++) { dd += (a[i] - b[i]) ** 2; rr += b[i] ** 2; }
  return Math.sqrt(dd / rr);
}
const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/**
 * Steps on batches of the given rows (the first is the built size), on one session and on
 * `workers` data-parallel workers, from the same mid-run state: equal per step.
 */
async function compare(c: UNetConfig, rowsPerStep: number[], workers: number, seed: number): Promise<void> {
  await ready();
  const s = midRunState(c, seed);
  const one = await OnnxTrainEngine.create(options(c, rowsPerStep[0], s, 1));
  const dp = await OnnxTrainEngine.create(options(c, rowsPerStep[0], s, workers));
  try {
    assert.match(one.line, / 1 session x 1 intra-op thread /);
    assert.match(dp.line, new RegExp(` ${workers} sessions x 1 intra-op thread `));
    for (const [i, rows] of rowsPerStep.entries()) {
      const b = batchFor(c, rows, seed + 10 + i);
      const a = await one.step(b, SETTINGS), d = await dp.step(b, SETTINGS);
      assert.ok(Math.abs(a.loss - d.loss) <= 1e-6 * a.loss, `step ${i} (${rows} rows): loss ${d.loss} vs one session ${a.loss}`);
      assert.ok(Math.abs(a.gradNorm - d.gradNorm) <= 1e-5 * a.gradNorm, `step ${i}: grad norm ${d.gradNorm} vs ${a.gradNorm}`);
      const ref = one.state(), got = dp.state();
      assert.is(got.adamStep, ref.adamStep);
      for (const k of SLOTS) {
        const e = relL2(got[k], ref[k]);
        assert.ok(e < 1e-5, `step ${i} (${rows} rows): ${k} differs by ${e.toExponential(2)} (relative L2)`);
      }
      const upd = relL2(got.params.map((p, j) => p - s.params[j]), ref.params.map((p, j) => p - s.params[j]));
      assert.ok(upd < 1e-4, `step ${i}: the params update differs by ${upd.toExponential(2)}`);
    }
  } finally {
    await one.close();
    await dp.close();
  }
}

test('shards keep clips whole; the session layout follows --workers, --threads and the clips', () => {
  assert.equal(shardBounds(24, 8, 2), [0, 16, 24]);
  assert.equal(shardBounds(64, 1, 2), [0, 32, 64]);
  assert.equal(shardBounds(18, 6, 2), [0, 12, 18]);
  assert.equal(onnxLayout({ workers: 2, rows: 64 }, 2), { sessions: 2, threads: 1 });
  assert.equal(onnxLayout({ workers: 2, rows: 64 }, 8), { sessions: 2, threads: 4 });
  assert.equal(onnxLayout({ workers: 1, rows: 64 }, 2), { sessions: 1, threads: 2 });
  assert.equal(onnxLayout({ workers: 2, threads: 3, rows: 64 }, 2), { sessions: 2, threads: 3 });
  assert.equal(onnxLayout({ workers: 4, rows: 16, frames: 8 }, 4), { sessions: 2, threads: 2 });
  assert.equal(onnxLayout({ workers: 2, rows: 8, frames: 8 }, 2), { sessions: 1, threads: 2 });
  assert.equal(onnxLayout({ workers: 2, rows: 64, device: 'cuda' }, 2), { sessions: 1, threads: 2 });
});

test('image (mnist-tiny): a 2-worker step = the one-session step; then 5 images (uneven) and 1 image (one worker)', async () => {
  await compare(IMAGE, [4, 5, 1, 4], 2, 3);
});

test('video, temporal attention (mmnist-tiny): 2 clips on 2 workers = one session; then 3 clips (uneven shards 2 + 1)', async () => {
  await compare(VIDEO, [2 * VIDEO.video!.frames, 3 * VIDEO.video!.frames], 2, 5);
});

test('video, concat conditioning: 3 clips on 2 workers = one session; 1 clip; 3 workers', async () => {
  const F = CONCAT.video!.frames;
  await compare(CONCAT, [3 * F, F], 2, 7);
  await compare(CONCAT, [3 * F], 3, 8);
});

test('a batch of fewer clips than workers at build time is one clear error (the engine then uses one session)', async () => {
  await ready();
  const F = VIDEO.video!.frames;
  const layout = flatLayout(modelParamSpecs(VIDEO));
  let msg = '';
  try { await OnnxDpTrainer.create(VIDEO, layout, ADAM, F, F, { workers: 2 }); } catch (e) { msg = (e as Error).message; }
  assert.match(msg, /^--workers 2: a batch of 1 clips cannot be split over 2 workers/);
  const e = await OnnxTrainEngine.create(options(VIDEO, F, midRunState(VIDEO, 1), 2));
  assert.match(e.line, / 1 session x 1 intra-op thread /);
  await e.close();
});

test('deterministic: 6 data-parallel steps twice give the same bytes; a non-finite loss keeps the state', async () => {
  await ready();
  const s = midRunState(IMAGE, 11);
  const run = async () => {
    const e = await OnnxTrainEngine.create(options(IMAGE, 6, s, 2));
    try {
      const losses: number[] = [];
      for (let i = 0; i < 6; i++) losses.push((await e.step(batchFor(IMAGE, 6, 20 + i), SETTINGS)).loss);
      const before = e.state();
      const bad = batchFor(IMAGE, 6, 40);
      bad.x0[6 * 28 * 28 - 3] = NaN; // in the second worker's shard
      const r = await e.step(bad, SETTINGS);
      assert.ok(!Number.isFinite(r.loss), `loss should be NaN, is ${r.loss}`);
      const after = e.state();
      assert.is(after.adamStep, before.adamStep);
      for (const k of SLOTS) assert.ok(same(after[k], before[k]), `${k} changed on a NaN loss`);
      assert.ok(Number.isFinite((await e.step(batchFor(IMAGE, 6, 41), SETTINGS)).loss), 'a good step after the NaN one');
      return { losses, state: e.state() };
    } finally {
      await e.close();
    }
  };
  const a = await run(), b = await run();
  assert.equal(a.losses, b.losses);
  for (const k of SLOTS) assert.ok(same(a.state[k], b.state[k]), `${k}: two identical runs differ`);
  assert.is(a.state.adamStep, 6 + 7);
});

test('a failing step ends every worker and says why; the engine refuses further steps', async () => {
  await ready();
  const e = await OnnxTrainEngine.create(options(IMAGE, 4, midRunState(IMAGE, 13), 2));
  const tr = (e as unknown as { tr: OnnxDpTrainer }).tr;
  assert.is(tr.workers, 2);
  const b = batchFor(IMAGE, 4, 50);
  b.labels![3] = 1000; // no such class: onnxruntime's Gather fails in the second worker
  let msg = '';
  try { await e.step(b, SETTINGS); } catch (err) { msg = (err as Error).message; }
  assert.match(msg, /^onnx training worker: /);
  assert.is(tr.workers, 0, 'workers still alive after a failed step');
  msg = '';
  try { await e.step(batchFor(IMAGE, 4, 51), SETTINGS); } catch (err) { msg = (err as Error).message; }
  assert.match(msg, /used after release/);
  await e.close(); // idempotent
});

const data = loadBundledMnist();
const common = { backend: 'wasm' as const, quiet: true, threads: 1 };
const tiny = tinyImagePreset;
const tinyVideo = (steps: number) => tinyVideoPreset(steps, 5);

test('kill and resume across engines: 8 steps on tfjs, resumed on onnx with 2 workers to 20, equals the tfjs run', async () => {
  await ready();
  const full = await train({ preset: tiny(20, 4), data, out: path.join(dir, 'full'), engine: 'tfjs', workers: 1, ...common });
  const half = path.join(dir, 'half');
  const a = await train({ preset: tiny(8, 4), data, out: half, engine: 'tfjs', workers: 1, ...common });
  const b = await train({ preset: tiny(20, 4), data, out: half, resume: true, engine: 'onnx', workers: 2, ...common });
  const joined = [...a.losses, ...b.losses];
  const worst = Math.max(...joined.map((l, i) => Math.abs(l - full.losses[i]) / full.losses[i]));
  assert.ok(worst < 1e-4, `resumed curve vs tfjs: ${worst}`);
  assert.ok(worst > 0, 'the onnx part did not run');
  const ck = await loadCheckpoint(half, { optimizer: true }), ref = await loadCheckpoint(path.join(dir, 'full'), { optimizer: true });
  assert.is(ck.trainState!.adamStep, 20);
  assert.ok(relL2(ck.params, ref.params) < 1e-4, `params differ by ${relL2(ck.params, ref.params)}`);
  assert.ok(relL2(ck.optimizer!.v, ref.optimizer!.v) < 1e-3, `adam v differs by ${relL2(ck.optimizer!.v, ref.optimizer!.v)}`);
});

test('video: 5 steps on onnx with 2 workers, resumed on tfjs to 10, equals the tfjs run', async () => {
  await ready();
  const full = await trainVideo({ preset: tinyVideo(10), out: path.join(dir, 'v-full'), engine: 'tfjs', workers: 1, checkEvery: 0, ...common });
  const half = path.join(dir, 'v-half');
  const a = await trainVideo({ preset: tinyVideo(5), out: half, engine: 'onnx', workers: 2, checkEvery: 0, ...common });
  const b = await trainVideo({ preset: tinyVideo(10), out: half, resume: true, engine: 'tfjs', workers: 1, checkEvery: 0, ...common });
  const joined = [...a.losses, ...b.losses];
  const worst = Math.max(...joined.map((l, i) => Math.abs(l - full.losses[i]) / full.losses[i]));
  assert.ok(worst < 1e-4, `video loss curve across engines differs by ${worst}`);
  const ck = await loadCheckpoint(half), ref = await loadCheckpoint(path.join(dir, 'v-full'));
  assert.ok(relL2(ck.params, ref.params) < 1e-4, `video params differ by ${relL2(ck.params, ref.params)}`);
});

/**
 * Memory: 300 data-parallel steps must not grow. A leak of the per-step state (parameters, two
 * moments, EMA, the gradients: 5 x params float32, plus the batch) would add ~300 x that; allow 40
 * states' worth of allocator slack after a 100-step warm-up (the workers' heaps are in this RSS).
 */
test('memory: 300 data-parallel steps keep the process RSS flat', async () => {
  await ready();
  const rows = 2, n = flatLayout(modelParamSpecs(IMAGE)).size;
  const e = await OnnxTrainEngine.create(options(IMAGE, rows, midRunState(IMAGE, 17), 2));
  try {
    let k = 0;
    const run = async (steps: number) => { for (let i = 0; i < steps; i++) await e.step(batchFor(IMAGE, rows, 100 + k++), SETTINGS); };
    await run(100);
    e.state();
    const before = process.memoryUsage().rss;
    await run(300);
    e.state();
    const grown = process.memoryUsage().rss - before;
    const stateBytes = 5 * 4 * n + 3 * 4 * rows * 28 * 28;
    assert.ok(grown < 40 * stateBytes, `RSS grew by ${(grown / 2 ** 20).toFixed(1)} MB over 300 steps (one step's state is ${(stateBytes / 2 ** 20).toFixed(2)} MB)`);
  } finally {
    await e.close();
  }
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
