/**
 * The training loop on the onnx engine against the tfjs engine as oracle (diffusion/trainer.ts
 * with --engine tfjs|onnx): the same loss curve over 100 steps, checkpoints in the same files
 * whichever engine wrote them, a run that resumes across engines, and constant memory.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadBundledMnist } from '../../datasets/mnist/index.js';
import { modelParamSpecs } from '../../src/diffusion/arch.js';
import { CHECKPOINT_FORMAT, loadCheckpoint } from '../../src/diffusion/checkpoint.js';
import { flatLayout, joinFlat } from '../../src/diffusion/model.js';
import { DEFAULT_OBJECTIVE } from '../../src/diffusion/objective.js';
import { DEFAULT_ADAMW } from '../../src/diffusion/optim.js';
import { getPreset } from '../../src/diffusion/presets.js';
import { DEFAULT_SCHEDULE } from '../../src/diffusion/schedule.js';
import { train } from '../../src/diffusion/train.js';
import { TfjsTrainEngine, TrainEngine, TrainEngineOptions, createTrainEngine } from '../../src/diffusion/train-engine.js';
import { initParamValues } from '../../src/diffusion/unet.js';
import { OnnxTrainEngine } from '../../src/engine/onnx-train.js';
import { Rng } from '../../src/util/rng.js';
import { getVideoPreset } from '../../src/video/presets.js';
import { trainVideo } from '../../src/video/train-video.js';
import { ensureWasm } from '../helpers/backend.js';
import { tempDir } from '../helpers/common.js';
import { once, requireOrt, tinyImagePreset, tinyVideoPreset } from './helpers.js';

const ready = once(async () => {
  await ensureWasm();
  await requireOrt();
});
const dir = tempDir('driftlab-onnx-train-');
const data = loadBundledMnist();
const common = { workers: 1, backend: 'wasm' as const, quiet: true, threads: 1 };

const tiny = tinyImagePreset;
const tinyVideo = (steps: number) => tinyVideoPreset(steps, 10);

function maxRel(a: number[], b: number[]): number {
  assert.is(a.length, b.length);
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]) / Math.abs(b[i])));
}
function relL2(a: Float32Array, b: Float32Array): number {
  let dd = 0, rr = 0;
  for (let i = 0; i < a.length; i++) { dd += (a[i] - b[i]) ** 2; rr += b[i] ** 2; }
  return Math.sqrt(dd / rr);
}
/** a safetensors file's header: tensor names, dtypes, shapes, offsets (what makes two files "the same kind") */
function header(file: string): unknown {
  const buf = fs.readFileSync(file);
  const h = JSON.parse(buf.subarray(8, 8 + Number(buf.readBigUInt64LE(0))).toString('utf8'));
  delete h.__metadata__;
  return h;
}

test('100 steps of mnist-tiny: the same loss curve on onnx as on tfjs; the checkpoints are the same files', async () => {
  await ready();
  const a = await train({ preset: tiny(100), data, out: path.join(dir, 'tfjs'), engine: 'tfjs', ...common });
  const b = await train({ preset: tiny(100), data, out: path.join(dir, 'onnx'), engine: 'onnx', ...common });
  assert.ok(b.losses.slice(-10).reduce((x, y) => x + y) < 0.7 * b.losses.slice(0, 10).reduce((x, y) => x + y), 'onnx training does not lower the loss');
  const curve = maxRel(b.losses, a.losses);
  // measured when written: 2.5e-6 at worst over the 100 steps; params 4e-6, ema 3e-6, moments 3e-5
  assert.ok(curve < 1e-4, `loss curves differ by up to ${curve.toExponential(2)} (relative, per step)`);
  assert.ok(curve > 0, 'two engines agreeing bit for bit means one of them did not run');
  const ca = await loadCheckpoint(path.join(dir, 'tfjs'), { optimizer: true }), cb = await loadCheckpoint(path.join(dir, 'onnx'), { optimizer: true });
  assert.ok(relL2(cb.params, ca.params) < 1e-4, `params after 100 steps differ by ${relL2(cb.params, ca.params)}`);
  assert.ok(relL2(cb.ema!, ca.ema!) < 1e-4, `ema after 100 steps differs by ${relL2(cb.ema!, ca.ema!)}`);
  assert.ok(relL2(cb.optimizer!.v, ca.optimizer!.v) < 1e-3, `Adam v after 100 steps differs by ${relL2(cb.optimizer!.v, ca.optimizer!.v)}`);
  for (const f of ['model.safetensors', 'ema.safetensors', 'optimizer.safetensors']) {
    assert.equal(header(path.join(dir, 'onnx', f)), header(path.join(dir, 'tfjs', f)), `${f} differs in layout`);
  }
  assert.equal(fs.readdirSync(path.join(dir, 'onnx')).sort(), fs.readdirSync(path.join(dir, 'tfjs')).sort());
  assert.equal(Object.keys(cb.trainState!).sort(), Object.keys(ca.trainState!).sort());
  assert.is(cb.trainState!.adamStep, 100);
  assert.equal(cb.trainState!.rng, ca.trainState!.rng, 'both engines draw the same batches');
  const log = fs.readFileSync(path.join(dir, 'onnx', 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.is(log.length, 100);
  assert.ok(log.every((r) => r.gradNorm > 0 && Number.isFinite(r.gradNorm)), 'grad norms logged');
});

test('kill and resume across engines: 12 steps on tfjs, resumed on onnx to 30, equals the uninterrupted runs', async () => {
  await ready();
  const fullT = await train({ preset: tiny(30, 6), data, out: path.join(dir, 'full-t'), engine: 'tfjs', ...common });
  const fullO = await train({ preset: tiny(30, 6), data, out: path.join(dir, 'full-o'), engine: 'onnx', ...common });
  const half = path.join(dir, 'half');
  const a = await train({ preset: tiny(12, 6), data, out: half, engine: 'tfjs', ...common });
  const b = await train({ preset: tiny(30, 6), data, out: half, resume: true, engine: 'onnx', ...common });
  const joined = [...a.losses, ...b.losses];
  assert.equal(a.losses, fullT.losses.slice(0, 12), 'the tfjs part is the tfjs run');
  assert.ok(maxRel(joined, fullT.losses) < 1e-4, `resumed curve vs tfjs: ${maxRel(joined, fullT.losses)}`);
  assert.ok(maxRel(joined, fullO.losses) < 1e-4, `resumed curve vs onnx: ${maxRel(joined, fullO.losses)}`);
  const ck = await loadCheckpoint(half, { optimizer: true }), ref = await loadCheckpoint(path.join(dir, 'full-t'), { optimizer: true });
  assert.is(ck.trainState!.step, 30);
  assert.is(ck.trainState!.adamStep, 30);
  for (const [k, x, y] of [['params', ck.params, ref.params], ['ema', ck.ema!, ref.ema!], ['adam m', ck.optimizer!.m, ref.optimizer!.m], ['adam v', ck.optimizer!.v, ref.optimizer!.v]] as const) {
    assert.ok(relL2(x, y) < (k.startsWith('adam') ? 1e-3 : 1e-4), `${k} after the cross-engine resume differs by ${relL2(x, y)}`);
  }
  assert.equal(ck.trainState!.rng, ref.trainState!.rng);
  assert.is(fs.readFileSync(path.join(half, 'train-log.jsonl'), 'utf8').trim().split('\n').length, 30);
});

test('video (mmnist-tiny): 10 steps on onnx, resumed on tfjs to 20, equals the uninterrupted tfjs run', async () => {
  await ready();
  const full = await trainVideo({ preset: tinyVideo(20), out: path.join(dir, 'v-full'), engine: 'tfjs', checkEvery: 0, ...common });
  const half = path.join(dir, 'v-half');
  const a = await trainVideo({ preset: tinyVideo(10), out: half, engine: 'onnx', checkEvery: 0, ...common });
  const b = await trainVideo({ preset: tinyVideo(20), out: half, resume: true, engine: 'tfjs', checkEvery: 0, ...common });
  const curve = maxRel([...a.losses, ...b.losses], full.losses);
  assert.ok(curve < 1e-4, `video loss curve across engines differs by ${curve}`);
  const ck = await loadCheckpoint(half), ref = await loadCheckpoint(path.join(dir, 'v-full'));
  assert.ok(relL2(ck.params, ref.params) < 1e-4, `video params differ by ${relL2(ck.params, ref.params)}`);
});

test('prefetching the next batch while the engine runs changes no byte: the same losses, weights and saved state; a checkpoint taken with a batch in hand resumes exactly', async () => {
  await ready();
  const o = { ...common, workers: 2, engine: 'onnx' as const, checkEvery: 0, rolloutCheckEvery: 0 };
  const plain = await trainVideo({ preset: tinyVideoPreset(12, 5), out: path.join(dir, 'pf-off'), prefetch: false, ...o });
  const snap = path.join(dir, 'pf-snap');
  const ahead = await trainVideo({
    preset: tinyVideoPreset(12, 5), out: path.join(dir, 'pf-on'), ...o,
    // the step-5 checkpoint was written while step 6's batch was already drawn
    onStep: (step) => { if (step === 6) fs.cpSync(path.join(dir, 'pf-on'), snap, { recursive: true }); },
  });
  assert.equal(ahead.losses, plain.losses);
  const a = await loadCheckpoint(path.join(dir, 'pf-on'), { optimizer: true }), b = await loadCheckpoint(path.join(dir, 'pf-off'), { optimizer: true });
  assert.ok(a.params.every((v, i) => v === b.params[i]), 'weights differ with prefetching');
  assert.equal(a.trainState, { ...b.trainState!, savedAt: a.trainState!.savedAt });
  const mid = await loadCheckpoint(snap, { optimizer: true });
  assert.is(mid.trainState!.step, 5);
  const rest = await trainVideo({ preset: tinyVideoPreset(12, 5), out: snap, resume: true, ...o });
  assert.equal([...plain.losses.slice(0, 5), ...rest.losses], plain.losses);
  const c = await loadCheckpoint(snap);
  assert.ok(c.params.every((v, i) => v === b.params[i]), 'the run resumed from a checkpoint taken with a batch in hand differs');
});

test('--engine auto trains on onnx here and says so in one line; --device cuda without its provider is one clear error', async () => {
  await ready();
  const c = getPreset('mnist-tiny');
  const layout = flatLayout(modelParamSpecs(c.model));
  const params = joinFlat(layout, initParamValues(layout.specs, 1));
  const n = params.length;
  const o = (): TrainEngineOptions => ({
    config: { format: CHECKPOINT_FORMAT, model: c.model, schedule: DEFAULT_SCHEDULE, objective: DEFAULT_OBJECTIVE },
    adam: DEFAULT_ADAMW, state: { params: params.slice(), ema: params.slice(), m: new Float32Array(n), v: new Float32Array(n), adamStep: 0 },
    rows: 4, workers: 1, backend: 'wasm', threads: 1,
  });
  const lines: string[] = [];
  const e = await createTrainEngine('auto', { ...o(), say: (l) => lines.push(l) });
  await e.close();
  assert.is(e.name, 'onnx');
  assert.is(lines.length, 1);
  assert.match(lines[0], /^training on engine onnxruntime-node .* \(--engine auto\)$/);
  let msg = '';
  try { await createTrainEngine('onnx', { ...o(), device: 'cuda', say: null }); } catch (err) { msg = (err as Error).message; }
  assert.match(msg, /^--device cuda: onnxruntime-node was installed without its CUDA execution provider/);
  assert.not.match(msg, /\n/);
  msg = '';
  try { await createTrainEngine('tfjs', { ...o(), device: 'cuda', say: null }); } catch (err) { msg = (err as Error).message; }
  assert.match(msg, /--engine onnx/);
});

/**
 * Memory: 600 steps must not grow. A leak of the per-step state (parameters, two moments and the
 * EMA: 4 x params float32, plus the batch) would add ~600 x that; allow 40 states' worth of
 * allocator slack after a 100-step warm-up. tfjs: no tensor may survive a step.
 */
test('memory: 600 onnx steps keep the process RSS flat; tfjs steps leak no tensors', async () => {
  await ready();
  const c = getPreset('mnist-tiny');
  const layout = flatLayout(modelParamSpecs(c.model));
  const params = joinFlat(layout, initParamValues(layout.specs, 2));
  const n = params.length;
  const rows = 2, D = 28 * 28;
  const o = (): TrainEngineOptions => ({
    config: { format: CHECKPOINT_FORMAT, model: c.model, schedule: DEFAULT_SCHEDULE, objective: DEFAULT_OBJECTIVE },
    adam: DEFAULT_ADAMW, state: { params: params.slice(), ema: params.slice(), m: new Float32Array(n), v: new Float32Array(n), adamStep: 0 },
    rows, workers: 1, backend: 'wasm', threads: 1, say: null,
  });
  const rng = new Rng(3);
  const batch = () => ({ x0: rng.normals(rows * D), eps: rng.normals(rows * D), t: Int32Array.from({ length: rows }, () => rng.int(1000)), labels: Int32Array.of(1, 10) });
  const settings = { lr: 1e-3, gradClip: 1, emaDecay: 0.999 };
  const run = async (e: TrainEngine, steps: number) => { for (let i = 0; i < steps; i++) await e.step(batch(), settings); };
  const ox = await OnnxTrainEngine.create(o());
  try {
    await run(ox, 100);
    ox.state();
    const before = process.memoryUsage().rss;
    await run(ox, 500);
    ox.state();
    const grown = process.memoryUsage().rss - before;
    const stateBytes = 4 * 4 * n + 3 * 4 * rows * D;
    assert.ok(grown < 40 * stateBytes, `RSS grew by ${(grown / 2 ** 20).toFixed(1)} MB over 500 steps (one step's state is ${(stateBytes / 2 ** 20).toFixed(2)} MB)`);
  } finally {
    await ox.close();
  }
  const te = await TfjsTrainEngine.create(o());
  try {
    await run(te, 2);
    const tensors = tf.memory().numTensors;
    await run(te, 20);
    assert.is(tf.memory().numTensors, tensors, 'tfjs steps leaked tensors');
  } finally {
    await te.close();
  }
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
