import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../../src/backend.js';
import { getPreset } from '../../src/diffusion/presets.js';
import { train } from '../../src/diffusion/train.js';
import { loadCheckpoint } from '../../src/diffusion/checkpoint.js';
import { lrAt } from '../../src/diffusion/trainer.js';
import { loadBundledMnist } from '../../datasets/mnist/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'driftlab-train-'));
const data = loadBundledMnist();
const tiny = (steps: number, every = 1000) => {
  const p = getPreset('mnist-tiny');
  p.train.steps = steps;
  p.train.checkpointEvery = every;
  p.train.seed = 3;
  return p;
};

test.before(async () => { await initBackend('wasm', { quiet: true }); });
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('a short mnist-tiny training lowers the loss', async () => {
  const r = await train({ preset: tiny(40), data, out: path.join(tmp, 'lower'), workers: 1, backend: 'wasm', quiet: true });
  const first = r.losses.slice(0, 5).reduce((a, b) => a + b) / 5;
  const last = r.losses.slice(-10).reduce((a, b) => a + b) / 10;
  assert.ok(last < 0.5 * first, `loss did not fall enough: ${first} -> ${last}`);
  const log = fs.readFileSync(path.join(tmp, 'lower', 'train-log.jsonl'), 'utf8').trim().split('\n');
  assert.is(log.length, 40);
  assert.is(JSON.parse(log[39]).step, 40);
});

test('resume continues exactly: losses and weights equal the uninterrupted run', async () => {
  const full = await train({ preset: tiny(10), data, out: path.join(tmp, 'full'), workers: 1, backend: 'wasm', quiet: true });
  const half = path.join(tmp, 'half');
  const a = await train({ preset: tiny(5), data, out: half, workers: 1, backend: 'wasm', quiet: true });
  const b = await train({ preset: tiny(10), data, out: half, resume: true, workers: 1, backend: 'wasm', quiet: true });
  assert.equal([...a.losses, ...b.losses], full.losses);
  const c1 = await loadCheckpoint(path.join(tmp, 'full'), { optimizer: true });
  const c2 = await loadCheckpoint(half, { optimizer: true });
  assert.ok(Buffer.from(c1.params.buffer).equals(Buffer.from(c2.params.buffer)), 'params differ');
  assert.ok(Buffer.from(c1.ema!.buffer).equals(Buffer.from(c2.ema!.buffer)), 'ema differs');
  assert.ok(Buffer.from(c1.optimizer!.v.buffer).equals(Buffer.from(c2.optimizer!.v.buffer)), 'adam v differs');
  assert.is(fs.readFileSync(path.join(half, 'train-log.jsonl'), 'utf8').trim().split('\n').length, 10);
});

test('two data-parallel workers equal one big batch up to float rounding', async () => {
  const one = await train({ preset: tiny(3), data, out: path.join(tmp, 'w1'), workers: 1, backend: 'wasm', quiet: true });
  const two = await train({ preset: tiny(3), data, out: path.join(tmp, 'w2'), workers: 2, backend: 'wasm', quiet: true });
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(one.losses[i] - two.losses[i]) < 1e-5 * one.losses[i], `step ${i}: ${one.losses[i]} vs ${two.losses[i]}`);
  const p1 = (await loadCheckpoint(path.join(tmp, 'w1'))).params;
  const p2 = (await loadCheckpoint(path.join(tmp, 'w2'))).params;
  let maxDiff = 0, maxAbs = 0;
  for (let i = 0; i < p1.length; i++) { maxDiff = Math.max(maxDiff, Math.abs(p1[i] - p2[i])); maxAbs = Math.max(maxAbs, Math.abs(p1[i])); }
  assert.ok(maxDiff < 1e-4 * maxAbs, `params differ by ${maxDiff}`);
});

test('refuses to train over an existing checkpoint without --resume/--overwrite', async () => {
  let msg = '';
  try { await train({ preset: tiny(1), data, out: path.join(tmp, 'full'), workers: 1, backend: 'wasm', quiet: true }); } catch (e) { msg = (e as Error).message; }
  assert.match(msg, /already holds a checkpoint/);
});

test('lrAt: warm-up, then constant, then the cosine of --lr-decay-from (closed form at its ends and midpoint)', () => {
  const h = { lr: 2e-4, lrWarmup: 10 };
  assert.ok(Math.abs(lrAt(h, 0, 100) - 2e-5) < 1e-12);
  assert.ok(Math.abs(lrAt(h, 4, 100) - 1e-4) < 1e-12);
  for (const s of [9, 50, 99]) assert.is(lrAt(h, s, 100), 2e-4);
  const d = { ...h, lrDecayFrom: 60 };
  for (const s of [9, 30, 59, 60]) assert.is(lrAt(d, s, 100), 2e-4, `step ${s}`);
  assert.ok(Math.abs(lrAt(d, 80, 100) - 1e-4) < 1e-12, 'half-way: lr / 2');
  assert.ok(Math.abs(lrAt(d, 99, 100) - 2e-4 * 0.5 * (1 + Math.cos(Math.PI * 39 / 40))) < 1e-15);
  for (let s = 61; s < 100; s++) assert.ok(lrAt(d, s, 100) < lrAt(d, s - 1, 100) && lrAt(d, s, 100) > 0, `step ${s}`);
  // overlapping warm-up and decay multiply
  assert.ok(Math.abs(lrAt({ lr: 1, lrWarmup: 10, lrDecayFrom: 0 }, 4, 10) - 0.5 * 0.5 * (1 + Math.cos(Math.PI * 0.4))) < 1e-12);
});

test('--lr-decay-from: the log records the decayed rates, a resumed run takes them up exactly; a step outside the run is refused before anything is written', async () => {
  const dec = (steps: number) => { const p = tiny(steps); p.train.lrDecayFrom = 4; return p; };
  const full = await train({ preset: dec(10), data, out: path.join(tmp, 'dec'), workers: 1, backend: 'wasm', quiet: true });
  const lrs = fs.readFileSync(path.join(tmp, 'dec', 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).lr);
  const p = dec(10).train;
  assert.equal(lrs, Array.from({ length: 10 }, (_, s) => lrAt(p, s, 10)));
  assert.ok(lrs[9] < 0.1 * lrs[3] && lrs[4] === lrs[3], `lr at steps 4, 5, 10: ${lrs[3]} ${lrs[4]} ${lrs[9]}`);
  const half = path.join(tmp, 'dec-half');
  const a = await train({ preset: dec(10), data, out: half, workers: 1, backend: 'wasm', quiet: true, minutes: 1e-9 });
  const b = await train({ preset: dec(10), data, out: half, resume: true, workers: 1, backend: 'wasm', quiet: true });
  assert.ok(a.losses.length >= 1 && a.losses.length < 10, `first leg ran ${a.losses.length} steps`);
  assert.equal([...a.losses, ...b.losses], full.losses);
  const bad = tiny(10); bad.train.lrDecayFrom = 10;
  let msg = '';
  try { await train({ preset: bad, data, out: path.join(tmp, 'dec-bad'), workers: 1, backend: 'wasm', quiet: true }); } catch (e) { msg = (e as Error).message; }
  assert.match(msg, /--lr-decay-from must be a step in 0\.\.9/);
  assert.not.ok(fs.existsSync(path.join(tmp, 'dec-bad')), 'nothing written');
});

test.run();
