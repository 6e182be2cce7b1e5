/**
 * Digit trajectories: the regenerated truth is the simulator's, and positions recovered from
 * pooled simulator frames are within 1 canvas px of the truth for every digit and frame
 * (overlapping digits included), at pool 2 (S=32) and pool 1 (S=64).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MovingMnist } from '../../datasets/moving-mnist/index.js';
import { loadBundledMnist } from '../../datasets/mnist/index.js';
import { poolFrame } from '../../src/video/clips.js';
import { toU8 } from '../../src/video/frames8.js';
import { TrajectoryMatcher, recoverPositions } from '../../src/drift/trajectory.js';
import { templateGroups, trajectoryError, truthTrajectories } from '../../src/drift/trajectory-truth.js';
import { throwsDriftlab } from '../helpers/common.js';

const data = { size: 64, digits: 2, speedMin: 3.6, speedMax: 3.6, stochastic: false, pool: 2 };

/** Simulator frames pooled and quantised exactly as a rollout stores truth.npy. */
function pooledFrames(cfg: typeof data, seed: number, n: number, T: number): Uint8Array[] {
  const mm = new MovingMnist({ ...cfg, split: 'test' }, seed);
  const S0 = cfg.size, S = S0 / cfg.pool;
  const clip = mm.clip(n, false);
  const raw = new Uint8Array(S0 * S0), f = new Float32Array(S * S);
  const out: Uint8Array[] = [];
  for (let t = 0; t < T; t++) { clip.next(raw); poolFrame(raw, S0, cfg.pool, f); out.push(toU8(f)); }
  return out;
}

const overlapping = (a: number[], b: number[]) => Math.abs(Math.round(a[0]) - Math.round(b[0])) < 28 && Math.abs(Math.round(a[1]) - Math.round(b[1])) < 28;

test('truthTrajectories regenerates the clips of a rollout (test split)', () => {
  const run = { data, seed: 5, rollouts: 3 };
  const tr = truthTrajectories(run, 6);
  assert.is(tr.length, 3);
  const mm = new MovingMnist({ ...data, split: 'test' }, 5);
  const src = loadBundledMnist();
  for (let n = 0; n < 3; n++) {
    const { truth } = mm.generate(1, 6, n);
    assert.equal(tr[n].indices, truth[0].map((d) => d.index));
    assert.equal(tr[n].labels, truth[0].map((d) => d.label));
    assert.is(tr[n].positions.length, 6);
    for (let t = 0; t < 6; t++) for (let d = 0; d < 2; d++) assert.equal(tr[n].positions[t][d], truth[0][d].positions[t]);
    for (let d = 0; d < 2; d++) assert.equal(Array.from(tr[n].templates[d]), Array.from(src.images.subarray(truth[0][d].index * 784, (truth[0][d].index + 1) * 784)));
  }
});

for (const [pool, clips, T] of [[2, 8, 60], [1, 3, 40]] as const) {
  test(`recovered positions within 1 canvas px of the truth, pool ${pool} (S=${64 / pool}), overlaps included`, () => {
    const cfg = { ...data, pool };
    const S = 64 / pool;
    const run = { data: cfg, seed: 11, rollouts: clips };
    const truth = truthTrajectories(run, T);
    let overlaps = 0, worst = 0;
    for (let n = 0; n < clips; n++) {
      const frames = pooledFrames(cfg, 11, n, T);
      const m = new TrajectoryMatcher(S, 64, pool, truth[n].templates);
      const groups = templateGroups(truth[n].templates);
      for (let t = 0; t < T; t++) {
        const rec = m.recover(frames[t]);
        const tp = truth[n].positions[t];
        if (overlapping(tp[0], tp[1])) overlaps++;
        const err = trajectoryError(rec, tp, groups);
        // every digit, not only the mean (identities are distinct templates here)
        if (groups.every((g, i) => g === i)) for (let d = 0; d < 2; d++) {
          const e = Math.hypot(rec[d][0] - tp[d][0], rec[d][1] - tp[d][1]);
          worst = Math.max(worst, e);
          assert.ok(e <= 1, `clip ${n} frame ${t} digit ${d}: recovered ${rec[d]} vs true ${tp[d]} (${e.toFixed(2)} px)`);
        }
        assert.ok(err <= 1, `clip ${n} frame ${t}: error ${err}`);
      }
    }
    assert.ok(overlaps >= 10, `only ${overlaps} frames with overlapping digit boxes; choose other clips`);
    assert.ok(worst <= Math.SQRT1_2 + 1e-9, `worst ${worst}: recovered offsets should be round(truth)`);
  });
}

test('three digits, heavy overlap, pool 2', () => {
  const cfg = { ...data, digits: 3 };
  const truth = truthTrajectories({ data: cfg, seed: 3, rollouts: 3 }, 30);
  for (let n = 0; n < 3; n++) {
    const frames = pooledFrames(cfg, 3, n, 30);
    const m = new TrajectoryMatcher(32, 64, 2, truth[n].templates);
    const g = templateGroups(truth[n].templates);
    for (let t = 0; t < 30; t++) assert.ok(trajectoryError(m.recover(frames[t]), truth[n].positions[t], g) <= 1, `clip ${n} frame ${t}`);
  }
});

test('recoverPositions with a hint; an empty frame still returns in-range positions; bad input', () => {
  const truth = truthTrajectories({ data, seed: 11, rollouts: 1 }, 10);
  const frames = pooledFrames(data, 11, 0, 10);
  const tp = truth[0].positions[9];
  const rec = recoverPositions(frames[9], 32, 64, 2, truth[0].templates, { positions: truth[0].positions[8], radius: 6 });
  assert.ok(trajectoryError(rec, tp) <= 1);
  const empty = recoverPositions(new Uint8Array(32 * 32), 32, 64, 2, truth[0].templates);
  for (const [x, y] of empty) assert.ok(x >= 0 && x <= 36 && y >= 0 && y <= 36);
  throwsDriftlab(() => recoverPositions(new Uint8Array(10), 32, 64, 2, truth[0].templates), /pixels/);
  throwsDriftlab(() => new TrajectoryMatcher(30, 64, 2, truth[0].templates), /canvas 64 \/ pool 2/);
});

test('trajectoryError: mean Euclidean distance; identical templates may swap identities', () => {
  assert.is(trajectoryError([[0, 0], [10, 10]], [[3, 4], [10, 10]]), 2.5);
  assert.is(trajectoryError([[10, 10], [0, 0]], [[0, 0], [10, 10]], [0, 0]), 0);
  const a = new Uint8Array(784).fill(3), b = new Uint8Array(784).fill(3), c = new Uint8Array(784);
  assert.equal(templateGroups([a, c, b]), [0, 1, 0]);
});

test('speed: 2-digit recovery at S=32', () => {
  const truth = truthTrajectories({ data, seed: 11, rollouts: 1 }, 200);
  const frames = pooledFrames(data, 11, 0, 200);
  const m = new TrajectoryMatcher(32, 64, 2, truth[0].templates);
  const t0 = performance.now();
  for (const f of frames) m.recover(f);
  const ms = (performance.now() - t0) / frames.length;
  console.log(`    trajectory recovery: ${ms.toFixed(3)} ms/frame (S=32, 2 digits)`);
  assert.ok(ms < 20, `${ms} ms per frame`);
});

test.run();
