import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ensureWasm } from '../helpers/backend.js';
import { tempDir } from '../helpers/common.js';
import { getVideoPreset } from '../../src/video/presets.js';
import { trainVideo } from '../../src/video/train-video.js';
import { ClipStream, clipWindow, poolFrame } from '../../src/video/clips.js';
import { POOL_CLIP_BASE, SELF_CONTEXT_FILE, SelfContextConfig, SelfContextPool } from '../../src/video/self-context.js';
import { quantize8 } from '../../src/video/frames8.js';
import { makeSchedule } from '../../src/diffusion/schedule.js';
import { modelParamSpecs } from '../../src/diffusion/arch.js';
import { initParamValues } from '../../src/diffusion/unet.js';
import { flatLayout, joinFlat } from '../../src/diffusion/model.js';
import { MovingMnist } from '../../datasets/moving-mnist/index.js';
import { loadBundledMnist } from '../../datasets/mnist/index.js';
import { TrajectoryMatcher } from '../../src/drift/trajectory.js';
import { templateGroups, trajectoryError } from '../../src/drift/trajectory-truth.js';
import { toU8 } from '../../src/video/frames8.js';
import { Rng } from '../../src/util/rng.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.js');
const dir = tempDir('driftlab-self-context-');
const tiny = (steps: number) => { const p = getVideoPreset('mmnist-tiny'); p.train.steps = steps; p.train.seed = 2; return p; };
const cfg = (o: Partial<SelfContextConfig> = {}): SelfContextConfig => ({ p: 0.5, every: 15, clips: 3, frames: 4, maxError: 1e9, steps: 2, target: 'shifted', ...o });

function poolFor(c: SelfContextConfig) {
  const p = tiny(1);
  const layout = flatLayout(modelParamSpecs(p.model));
  const weights = joinFlat(layout, initParamValues(layout.specs, 3));
  const pool = new SelfContextPool(c, { model: p.model, schedule: makeSchedule(p.schedule), prediction: p.objective.prediction, data: p.data, seed: 7 });
  return { p, pool, weights };
}

test('self-context windows: the context slides from the true frames into the model\'s own; --self-context-target truth: the targets are the simulator\'s continuation', async () => {
  await ensureWasm();
  const c = cfg({ target: 'truth' });
  const { p, pool, weights } = poolFor(c);
  await pool.make(weights, 30, 1);
  const v = p.model.video!, K = v.contextFrames, F = v.frames, S = p.model.sampleSize, fr = S * S;
  assert.is(pool.size, c.clips * c.frames, 'maxError 1e9 keeps every window');
  // the clips, recomputed: clip 1e9 + (30 / 15) * 3 + i of the run's generator
  const mm = new MovingMnist(p.data, 7);
  for (let ci = 0; ci < c.clips; ci++) {
    const truth = quantize8(clipWindow(mm, p.data.pool, POOL_CLIP_BASE + 2 * c.clips + ci, K + c.frames + F - K));
    const frame = (w: Float32Array, f: number) => Array.from(w.subarray(f * fr, (f + 1) * fr));
    const own: number[][] = []; // generated frame i, as the windows show it
    for (let j = 1; j <= c.frames; j++) {
      const w = pool.window(ci, j);
      assert.is(w.length, F * fr);
      for (let f = 0; f < F; f++) {
        const pos = j + f;
        if (f < K && pos >= K) {
          // a generated frame: the same in every window that holds it
          if (own[pos - K]) assert.equal(frame(w, f), own[pos - K], `clip ${ci} window ${j} frame ${f}`);
          else own[pos - K] = frame(w, f);
        } else {
          assert.equal(frame(w, f), frame(truth, pos), `clip ${ci} window ${j} frame ${f} is truth frame ${pos}`);
        }
      }
    }
    // an untrained model's frames are not the simulator's
    assert.ok(own.every((g, i) => g.some((x, k) => Math.abs(x - truth[(K + i) * fr + k]) > 0.1)));
  }
  // the recorded errors are the trajectory errors of those frames against the clip's true positions
  const src = loadBundledMnist();
  const clip = mm.clip(POOL_CLIP_BASE + 2 * c.clips + 1, true);
  const buf = new Uint8Array(p.data.size ** 2);
  for (let t = 0; t < K + c.frames; t++) clip.next(buf);
  const templates = clip.truth.map((d) => src.images.slice(d.index * 784, (d.index + 1) * 784));
  const m = new TrajectoryMatcher(S, p.data.size, p.data.pool, templates);
  for (let i = 0; i < c.frames; i++) {
    const g = toU8(pool.window(1, i + 1).subarray((K - 1) * fr, K * fr));
    const e = trajectoryError(m.recover(g), clip.truth.map((d) => d.positions[K + i]), templateGroups(templates));
    assert.ok(Math.abs(e - pool.error(1, i)) < 1e-9, `error of frame ${i}: ${e} vs ${pool.error(1, i)}`);
  }
});

test('self-context shifted targets: the simulator\'s continuation with every digit displaced by the last own frame\'s position error', async () => {
  await ensureWasm();
  const c = cfg({ clips: 2, frames: 3 });
  const { p, pool, weights } = poolFor(c);
  await pool.make(weights, 0, 1);
  const v = p.model.video!, K = v.contextFrames, N = v.frames - K, fr = p.model.sampleSize ** 2;
  const mm = new MovingMnist(p.data, 7);
  const raw = new Uint8Array(p.data.size ** 2), pooled = new Float32Array(fr);
  let moved = 0;
  for (let ci = 0; ci < c.clips; ci++) {
    const probe = mm.clip(POOL_CLIP_BASE + ci, true);
    for (let t = 0; t < K + c.frames + N; t++) probe.next(raw);
    for (let j = 1; j <= c.frames; j++) {
      const rec = pool.recovered(ci, j - 1);
      const off = rec.flatMap(([x, y], d) => [x - probe.truth[d].positions[K + j - 1][0], y - probe.truth[d].positions[K + j - 1][1]]);
      moved += off.some((o) => Math.abs(o) > 1) ? 1 : 0;
      const clip = mm.clip(POOL_CLIP_BASE + ci, false);
      const w = pool.window(ci, j);
      for (let t = 0; t < K + j + N; t++) {
        clip.next(raw, t >= K + j ? off : undefined);
        if (t < K + j) continue;
        const f = t - j; // the window's frame index of clip frame t
        // the simulator's draw at the displaced positions: digit d at round(clamp(truth + offset))
        const want = new Uint8Array(p.data.size ** 2);
        probe.truth.forEach((d, di) => {
          const x = Math.round(Math.min(36, Math.max(0, d.positions[t][0] + off[2 * di]))), y = Math.round(Math.min(36, Math.max(0, d.positions[t][1] + off[2 * di + 1])));
          const src = loadBundledMnist().images;
          for (let r = 0; r < 28; r++) for (let q = 0; q < 28; q++) want[(y + r) * 64 + x + q] = Math.max(want[(y + r) * 64 + x + q], src[d.index * 784 + r * 28 + q]);
        });
        assert.equal(Array.from(raw), Array.from(want), `clip ${ci} window ${j} target frame ${t}`);
        poolFrame(raw, p.data.size, p.data.pool, pooled);
        assert.equal(Array.from(w.subarray(f * fr, (f + 1) * fr)), Array.from(quantize8(pooled)), `clip ${ci} window ${j} target ${f}`);
      }
    }
  }
  assert.ok(moved > 0, 'an untrained model puts the digits elsewhere: some targets are displaced');
});

test('self-context filter: a window is kept exactly when every generated frame of its context is within maxError', async () => {
  await ensureWasm();
  const probe = poolFor(cfg({ frames: 5 }));
  await probe.pool.make(probe.weights, 0, 1);
  const errs = Array.from({ length: 3 }, (_, ci) => Array.from({ length: 5 }, (_, i) => probe.pool.error(ci, i)));
  const sorted = errs.flat().sort((a, b) => a - b);
  const threshold = sorted[Math.floor(sorted.length / 2)];
  const { pool, weights } = poolFor(cfg({ frames: 5, maxError: threshold }));
  await pool.make(weights, 0, 1);
  const K = tiny(1).model.video!.contextFrames;
  const expect: [number, number][] = [];
  for (let ci = 0; ci < 3; ci++) for (let j = 1; j <= 5; j++) {
    if (errs[ci].slice(Math.max(0, j - K), j).every((e) => e <= threshold)) expect.push([ci, j]);
  }
  assert.equal(pool.kept(), expect);
  assert.ok(expect.length > 0 && expect.length < 15, `threshold ${threshold} keeps ${expect.length} of 15`);
});

test('self-context in the stream: a share p of the windows comes from the pool; p = 0 replays the old stream; an empty pool gives fresh clips', () => {
  const p = tiny(1);
  const opts = { data: p.data, seed: 1, batchSize: 64, frames: 6, contextFrames: 3, maxContextT: 0, T: 1000 };
  const plain = new ClipStream(opts).next(new Rng(0));
  const marker = new Float32Array(6 * 16 * 16).fill(0.25);
  let draws = 0;
  const fake = { draw: (rng: Rng) => { draws++; rng.int(5); return marker; } };
  const off = new ClipStream({ ...opts, selfContext: { p: 0, pool: fake } }).next(new Rng(0));
  assert.equal([Array.from(off.x0), Array.from(off.t), Array.from(off.eps)], [Array.from(plain.x0), Array.from(plain.t), Array.from(plain.eps)]);
  assert.is(draws, 0);
  const s = new ClipStream({ ...opts, selfContext: { p: 0.5, pool: fake } });
  const b = s.next(new Rng(0));
  const W = marker.length;
  const fromPool = Array.from({ length: 64 }, (_, i) => b.x0.subarray(i * W, (i + 1) * W).every((x) => x === 0.25));
  assert.is(fromPool.filter(Boolean).length, draws);
  assert.ok(draws > 20 && draws < 44, `${draws} of 64 windows from the pool`);
  // the other windows are the next fresh clips, in order
  const mm = new MovingMnist(p.data, 1);
  let k = 0;
  for (let i = 0; i < 64; i++) if (!fromPool[i]) assert.equal(Array.from(b.x0.subarray(i * W, (i + 1) * W)), Array.from(clipWindow(mm, 4, k++, 6)));
  assert.equal(s.state(), { kind: 'moving-mnist-clips', nextClip: 64 - draws });
  const empty = new ClipStream({ ...opts, selfContext: { p: 1, pool: { draw: () => null } } }).next(new Rng(0));
  assert.equal(Array.from(empty.x0), Array.from(plain.x0));
});

test('--self-context trains on the pool, saves it, and a resumed run (also one killed before its pool was remade) equals the uninterrupted run', async () => {
  await ensureWasm();
  const withSc = (steps: number) => { const p = tiny(steps); p.train.selfContext = cfg({ every: 15, maxError: 1e9 }); return p; };
  const full = await trainVideo({ preset: withSc(30), out: path.join(dir, 'full'), workers: 1, backend: 'wasm', quiet: true });
  const plain = await trainVideo({ preset: tiny(30), out: path.join(dir, 'plain'), workers: 1, backend: 'wasm', quiet: true });
  assert.ok(full.losses.slice(1).some((l, i) => l !== plain.losses[i + 1]), 'the pool windows change the losses');
  assert.ok(fs.existsSync(path.join(dir, 'full', SELF_CONTEXT_FILE)));
  // a 15-step run stops before remaking its pool at step 15: the resume makes it from the step-15 checkpoint
  const half = path.join(dir, 'half');
  const a = await trainVideo({ preset: withSc(15), out: half, workers: 1, backend: 'wasm', quiet: true });
  const b = await trainVideo({ preset: withSc(30), out: half, resume: true, workers: 1, backend: 'wasm', quiet: true });
  assert.equal([...a.losses, ...b.losses], full.losses);
  // and a resume that finds the pool of its step loads it
  const c = await trainVideo({ preset: withSc(22), out: path.join(dir, 'c'), workers: 1, backend: 'wasm', quiet: true });
  const d = await trainVideo({ preset: withSc(30), out: path.join(dir, 'c'), resume: true, workers: 1, backend: 'wasm', quiet: true });
  assert.equal([...c.losses, ...d.losses], full.losses);
});

test('the in-training rollout check is the drift study\'s rollout: same clips, same sampler stream, same trajectory errors', async () => {
  await ensureWasm();
  const { tinyVideoPipeline } = await import('../helpers/video.js');
  const { loadPipeline } = await import('../../src/diffusion/pipeline.js');
  const { loadCheckpoint } = await import('../../src/diffusion/checkpoint.js');
  const { rollout } = await import('../../src/video/rollout.js');
  const { makeCorrector } = await import('../../src/drift/correctors/index.js');
  const { correctorContext } = await import('../../src/drift/context.js');
  const { runFrameMetrics } = await import('../../src/drift/metrics.js');
  const { rolloutCheck } = await import('../../src/video/self-context.js');
  const tinyV = tinyVideoPipeline(path.join(dir, 'rc'), 8);
  await tinyV.pipeline();
  const ck = await loadCheckpoint(tinyV.ckpt, { ema: true });
  const c = ck.config, K = c.model.video!.contextFrames, N = 4, L = 3, seed = 5;
  const r = await rolloutCheck(ck.ema!, { model: c.model, schedule: makeSchedule(c.schedule), prediction: c.objective.prediction, data: (c.training as any).data }, { clips: N, frames: L, steps: 3, seed }, 1);
  const p = await loadPipeline(tinyV.ckpt, 'ema', { engine: 'onnx', threads: 1 });
  try {
    const rng = new Rng(seed).fork('corrector');
    const out = path.join(dir, 'rc-drift');
    await rollout({ rollouts: N, horizon: L, context: K, chunk: 1, sampler: 'ddim', steps: 3, eta: 0, seed, pipeline: p, corrector: makeCorrector('none', correctorContext(p, rng, K)), out, checkpoint: tinyV.ckpt, correctorRng: rng, quiet: true });
    const m = await runFrameMetrics(out);
    const want = Array.from({ length: L }, (_, i) => { let s = 0; for (let n = 0; n < N; n++) s += m.traj[(K + i) * N + n]; return s / N; });
    for (let i = 0; i < L; i++) assert.ok(Math.abs(r.meanError[i] - want[i]) < 1e-9, `frame ${i + 1}: check ${r.meanError[i]} vs drift study ${want[i]}`);
    const h = want.findIndex((e) => e > 8);
    assert.is(r.horizon, h < 0 ? null : h + 1);
  } finally {
    await p.dispose();
  }
});

test('--self-context: bad values give one clear line and write nothing', () => {
  for (const [args, re] of [
    [['--self-context', '2'], /--self-context must be in \[0, 1\], got 2/],
    [['--self-context', '0.5', '--self-context-every', '7'], /--self-context-every must be a positive multiple of the checkpoint interval \(15 steps\)/],
    [['--self-context', '0.5', '--self-context-every', '30', '--self-context-clips', '0'], /--self-context-clips must be an integer in 1\.\.65536, got 0/],
    [['--self-context', '0.5', '--self-context-every', '30', '--self-context-frames', '2.5'], /--self-context-frames must be an integer/],
    [['--self-context', '0.5', '--self-context-every', '30', '--self-context-max-error', '-1'], /--self-context-max-error must be >= 0/],
    [['--self-context-clips', '8'], /--self-context-clips needs --self-context P/],
    [['--self-context', '0.5', '--self-context-target', 'blur'], /self-context-target/],
    [['--rollout-check-every', '-1'], /--rollout-check-every/],
  ] as const) {
    const out = path.join(dir, 'bad');
    const r = spawnSync(process.execPath, [CLI, 'train-video', '--preset', 'mmnist-tiny', '--steps', '1', '--workers', '1', '--out', out, ...args], { encoding: 'utf8' });
    assert.ok(r.status !== 0, `${args.join(' ')} accepted`);
    assert.match(r.stderr, re);
    assert.is(r.stderr.trim().split('\n').filter((l) => l.includes('error')).length, 1);
    assert.not.ok(fs.existsSync(out), `${args.join(' ')}: nothing written`);
  }
  const ok = spawnSync(process.execPath, [CLI, 'train-video', '--preset', 'mmnist-tiny', '--steps', '2', '--workers', '1', '--check-every', '0', '--out', path.join(dir, 'cli'),
    '--self-context', '0.5', '--self-context-every', '30', '--self-context-clips', '2', '--self-context-frames', '3', '--self-context-max-error', '100', '--self-context-steps', '2', '--self-context-target', 'truth'], { encoding: 'utf8' });
  assert.is(ok.status, 0, ok.stderr);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'cli', 'config.json'), 'utf8')).training.selfContext, { p: 0.5, every: 30, clips: 2, frames: 3, maxError: 100, steps: 2, target: 'truth' });
  assert.match(ok.stderr, /self-context pool at step 0: 2 clips x 3 own frames/);
});

test.run();
