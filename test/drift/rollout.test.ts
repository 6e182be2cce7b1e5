/**
 * Autoregressive rollouts: constant memory in the horizon, exact resume after a kill, corrector
 * contracts (shape, range, determinism), the registry, and bad input.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { tinyVideoPipeline } from '../helpers/video.js';
import { rejectsDriftlab, tempDir, throwsDriftlab } from '../helpers/common.js';
import { rollout, RolloutSettings } from '../../src/video/rollout.js';
import { chain, listCorrectors, makeCorrector } from '../../src/drift/correctors/index.js';
import { correctorContext } from '../../src/drift/context.js';
import { readNpy } from '../../src/io/npy.js';
import { Rng } from '../../src/util/rng.js';

const dir = tempDir('driftlab-rollout-');
const tiny = tinyVideoPipeline(dir);
const pipeline = tiny.pipeline;
const ckpt = tiny.ckpt;
const settings = (horizon: number, seed = 1): RolloutSettings => ({ rollouts: 2, horizon, context: 3, chunk: 2, sampler: 'ddim', steps: 3, eta: 0, seed });
async function run(out: string, horizon: number, corrector = 'none', extra: Partial<{ resume: boolean; seed: number }> = {}) {
  const p = await pipeline();
  const rng = new Rng(extra.seed ?? 1).fork('corrector');
  const c = makeCorrector(corrector, correctorContext(p, rng, 3));
  return rollout({ ...settings(horizon, extra.seed), pipeline: p, corrector: c, out, checkpoint: ckpt, correctorRng: rng, quiet: true, resume: extra.resume });
}

test('tensor count does not grow with the horizon', async () => {
  await run(path.join(dir, 'warm'), 4);
  const before = tf.memory().numTensors;
  await run(path.join(dir, 'short'), 6);
  const mid = tf.memory().numTensors;
  await run(path.join(dir, 'long'), 40);
  assert.is(mid, before);
  assert.is(tf.memory().numTensors, before, 'a longer rollout left tensors behind');
  const f = await readNpy(path.join(dir, 'long', 'frames.npy'));
  assert.equal(f.shape, [43, 2, 16, 16]);
  const t = await readNpy(path.join(dir, 'long', 'truth.npy'));
  assert.equal(t.shape, [43, 2, 16, 16]);
  // the first K frames are the given context = the truth
  assert.equal(Array.from((f.data as Uint8Array).subarray(0, 3 * 512)), Array.from((t.data as Uint8Array).subarray(0, 3 * 512)));
});

test('--video: truth | generated GIF of a rollout, subsampled to a frame budget', async () => {
  const { writeRolloutVideo } = await import('../../src/commands/rollout.js');
  const { decodeGif } = await import('../../src/video/writers.js');
  const gif = path.join(dir, 'long.gif');
  await writeRolloutVideo(path.join(dir, 'long'), gif, 20, 8);
  const g = decodeGif(new Uint8Array(fs.readFileSync(gif)));
  assert.is(g.T, 15); // 43 frames, every 3rd
  assert.is(g.H, 2 * 2 * 16);
});

test('a rollout killed half way and resumed equals the uninterrupted one', async () => {
  for (const corrector of ['none', 'renoise']) {
    const full = path.join(dir, `full-${corrector}`), part = path.join(dir, `part-${corrector}`);
    await run(full, 10, corrector);
    await run(part, 4, corrector);
    // the kill came after two more frames were written but before state.json was updated
    const fp = path.join(part, 'frames.npy');
    fs.appendFileSync(fp, Buffer.alloc(2 * 2 * 256, 7));
    await run(part, 10, corrector, { resume: true });
    for (const f of ['frames.npy', 'truth.npy']) {
      assert.ok(fs.readFileSync(path.join(full, f)).equals(fs.readFileSync(path.join(part, f))), `${corrector}: ${f} differs after resume`);
    }
  }
});

test('every corrector keeps shape and range and is deterministic under a seed', async () => {
  const p = await pipeline();
  // built-ins only: uvu runs every test file in one process, and external.test.ts registers user modules
  for (const { name } of listCorrectors().filter((c) => !c.source)) {
    if (name === 'kalman' || name === 'controller') continue; // need fitting: tested in their own files
    const outs: Float32Array[] = [];
    for (let k = 0; k < 2; k++) {
      const rng = new Rng(4);
      const c = makeCorrector(name, correctorContext(p, rng, 3));
      const ctx = new Rng(5).normals(2 * 3 * 256).map((v) => Math.tanh(v));
      c.reset(ctx, 2, 3);
      const frame = { data: new Rng(6).normals(512).map((v) => Math.tanh(v)), n: 2, s: 16 };
      const hist = { generated: 0, recent: (j: number) => [0, 1, 2].slice(3 - j).map((i) => ({ data: ctx.slice(i * 512, (i + 1) * 512), n: 2, s: 16 })) };
      const r = await c.correct(frame, hist, 0);
      assert.is(r.data.length, 512, name);
      assert.ok(r.data.every((v) => v >= -1 && v <= 1), `${name}: out of range`);
      outs.push(r.data);
    }
    assert.equal(Array.from(outs[0]), Array.from(outs[1]), `${name} is not deterministic`);
  }
});

test('the registry lists the correctors and rejects unknown names', async () => {
  const names = listCorrectors().map((c) => c.name);
  for (const n of ['none', 'context-noise', 'renoise']) assert.ok(names.includes(n), n);
  const p = await pipeline();
  throwsDriftlab(() => makeCorrector('kalmann', correctorContext(p, new Rng(0))), /unknown corrector 'kalmann'; choose from .*none/);
  throwsDriftlab(() => makeCorrector('renoise', correctorContext(p, new Rng(0)), { t: 5000 }), /renoise: "t" must be/);
  const both = chain([makeCorrector('none', correctorContext(p, new Rng(0))), makeCorrector('context-noise', correctorContext(p, new Rng(0)), { t: 30 })]);
  assert.is(both.contextT!(), 30);
});

test('bad input: horizon, context, chunk, an output folder that holds another run', async () => {
  const p = await pipeline();
  const c = makeCorrector('none', correctorContext(p, new Rng(0)));
  const base = { pipeline: p, corrector: c, checkpoint: ckpt, correctorRng: new Rng(0), quiet: true };
  await rejectsDriftlab(rollout({ ...base, ...settings(0), out: path.join(dir, 'b1') }), /--horizon must be/);
  await rejectsDriftlab(rollout({ ...base, ...settings(5), context: 6, out: path.join(dir, 'b2') }), /--context must be an integer in 1\.\.5/);
  await rejectsDriftlab(rollout({ ...base, ...settings(5), chunk: 4, out: path.join(dir, 'b3') }), /--chunk must be an integer in 1\.\.3/);
  const before = fs.readFileSync(path.join(dir, 'short', 'frames.npy'));
  await rejectsDriftlab(rollout({ ...base, ...settings(6), out: path.join(dir, 'short') }), /already holds a rollout/);
  await rejectsDriftlab(rollout({ ...base, ...settings(6, 9), resume: true, out: path.join(dir, 'short') }), /holds another run/);
  assert.ok(before.equals(fs.readFileSync(path.join(dir, 'short', 'frames.npy'))), 'an existing run was touched');
  // a corrector that is not fitted fails before anything is written
  const k = makeCorrector('kalman', correctorContext(p, new Rng(0), 3));
  await rejectsDriftlab(rollout({ ...base, corrector: k, ...settings(5), out: path.join(dir, 'b4') }), /fit-corrector kalman/);
  assert.not.ok(fs.existsSync(path.join(dir, 'b4')), 'a failed rollout left a folder behind');
});

test.run();
