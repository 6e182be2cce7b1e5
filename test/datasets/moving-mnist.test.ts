import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MovingMnist, digitSplit } from '../../datasets/moving-mnist/index.js';
import { clipsFromNpy } from '../../datasets/moving-mnist/load.js';
import { loadBundledMnist } from '../../datasets/mnist/index.js';
import { readNpy } from '../../src/io/npy.js';
import { DriftlabError } from '../../src/util/errors.js';

const src = loadBundledMnist();
const L = 64 - 28;
/** Exact reflection into [0, L]: the triangle wave an unbounced straight line folds onto. */
const fold = (u: number) => { const p = ((u % (2 * L)) + 2 * L) % (2 * L); return p > L ? 2 * L - p : p; };

test('same seed, same bytes; another seed, other clips', () => {
  const a = new MovingMnist({}, 3).generate(2, 12);
  const b = new MovingMnist({}, 3).generate(2, 12);
  const c = new MovingMnist({}, 4).generate(2, 12);
  assert.ok(Buffer.from(a.frames).equals(Buffer.from(b.frames)));
  assert.not.ok(Buffer.from(a.frames).equals(Buffer.from(c.frames)));
});

test('frames are the pixel-wise max of the digits drawn at the recorded positions', () => {
  const { frames, truth } = new MovingMnist({ digits: 3 }, 1).generate(2, 25);
  for (let n = 0; n < 2; n++) for (let t = 0; t < 25; t++) {
    const ref = new Uint8Array(64 * 64);
    for (const d of truth[n]) {
      const [x, y] = d.positions[t].map(Math.round);
      for (let r = 0; r < 28; r++) for (let c = 0; c < 28; c++) {
        const v = src.images[d.index * 784 + r * 28 + c];
        ref[(y + r) * 64 + x + c] = Math.max(ref[(y + r) * 64 + x + c], v);
      }
      assert.is(d.label, src.labels[d.index]);
    }
    assert.ok(Buffer.from(ref).equals(Buffer.from(frames.subarray((n * 25 + t) * 4096, (n * 25 + t + 1) * 4096))), `clip ${n} frame ${t}`);
  }
});

test('the intensity centroid of each rendered digit agrees with its recorded position', () => {
  const clip = new MovingMnist({ digits: 1 }, 12).clip(0);
  const frame = new Uint8Array(4096);
  const d = clip.truth;
  for (let t = 0; t < 60; t++) {
    clip.next(frame);
    const { index } = d[0];
    let m = 0, cx = 0, cy = 0, dm = 0, dx = 0, dy = 0;
    for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) { const v = frame[y * 64 + x]; m += v; cx += v * x; cy += v * y; }
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) { const v = src.images[index * 784 + y * 28 + x]; dm += v; dx += v * x; dy += v * y; }
    const [px, py] = d[0].positions[t];
    // the digit is drawn at the rounded position; its own centroid is offset within the 28x28 box
    assert.ok(Math.abs(cx / m - (Math.round(px) + dx / dm)) < 1e-9 && Math.abs(cy / m - (Math.round(py) + dy / dm)) < 1e-9, `t=${t}`);
    assert.ok(Math.abs(cx / m - (px + dx / dm)) <= 0.5 + 1e-9 && Math.abs(cy / m - (py + dy / dm)) <= 0.5 + 1e-9);
  }
});

test('constant speed 3.6 px/frame with exact reflection: positions follow the folded straight line', () => {
  const clip = new MovingMnist({}, 9).clip(0);
  for (let t = 0; t < 400; t++) clip.next();
  for (const d of clip.truth) {
    const [x0, y0] = d.positions[0];
    const [vx, vy] = d.velocities[0];
    assert.ok(Math.abs(Math.hypot(vx, vy) - 3.6) < 1e-12);
    for (let t = 0; t < 400; t++) {
      const [x, y] = d.positions[t];
      assert.ok(Math.abs(x - fold(x0 + vx * t)) < 1e-9 && Math.abs(y - fold(y0 + vy * t)) < 1e-9, `t=${t}`);
      assert.ok(x >= 0 && x <= L && y >= 0 && y <= L);
    }
  }
});

test('stochastic (SMMNIST): same speed, new directions only at bounces, pointing away from the wall', () => {
  const clip = new MovingMnist({ stochastic: true }, 2).clip(0);
  for (let t = 0; t < 300; t++) clip.next();
  let changes = 0;
  for (const d of clip.truth) for (let t = 1; t < 300; t++) {
    const [vx0, vy0] = d.velocities[t - 1], [vx, vy] = d.velocities[t];
    assert.ok(Math.abs(Math.hypot(vx, vy) - 3.6) < 1e-9);
    const turned = Math.abs(vx - vx0) > 1e-12 || Math.abs(vy - vy0) > 1e-12;
    const [px, py] = d.positions[t - 1];
    const rx = px + vx0, ry = py + vy0; // where the straight line would have gone
    const hitX = rx < 0 || rx > L, hitY = ry < 0 || ry > L;
    assert.is(turned, hitX || hitY, `direction change without a bounce (or none at a bounce) at t=${t}`);
    if (!turned) continue;
    changes++;
    if (rx < 0) assert.ok(vx >= 0, 'left wall: must move right');
    if (rx > L) assert.ok(vx <= 0, 'right wall: must move left');
    if (ry < 0) assert.ok(vy >= 0, 'top wall: must move down');
    if (ry > L) assert.ok(vy <= 0, 'bottom wall: must move up');
  }
  assert.ok(changes > 5, 'no bounces seen');
  // and the directions are not just mirror images: some |vx| differs from before the bounce
  const d0 = clip.truth[0];
  assert.ok(d0.velocities.some((v, t) => t > 0 && Math.abs(Math.abs(v[0]) - Math.abs(d0.velocities[t - 1][0])) > 1e-6));
});

test('10,000 frames lazily in constant memory (no truth recorded)', () => {
  const clip = new MovingMnist({}, 5).clip(0, false);
  const buf = new Uint8Array(4096);
  for (let t = 0; t < 200; t++) clip.next(buf);
  const before = process.memoryUsage().heapUsed;
  let lit = 0;
  for (let t = 0; t < 10000; t++) { clip.next(buf); lit += buf[2080] > 0 ? 1 : 0; }
  const grown = process.memoryUsage().heapUsed - before;
  assert.ok(grown < 8e6, `heap grew by ${grown} bytes`);
  assert.is(clip.frameIndex, 10200);
  assert.ok(lit > 0);
  assert.is(clip.truth[0].positions.length, 0);
});

test('train and test digit pools are disjoint, 80/20, and fixed', () => {
  const tr = digitSplit(10000, 'train'), te = digitSplit(10000, 'test');
  assert.is(tr.length, 8000);
  assert.is(te.length, 2000);
  const s = new Set(tr);
  assert.ok(Array.from(te).every((i) => !s.has(i)));
  assert.equal(Array.from(digitSplit(10000, 'test').slice(0, 5)), Array.from(te.slice(0, 5)));
  const { truth } = new MovingMnist({ split: 'test' }, 0).generate(20, 1);
  const testSet = new Set(te);
  assert.ok(truth.flat().every((d) => testSet.has(d.index)));
});

test('.npy loader: [N,T,H,W] as is, mnist_test_seq layout [20,10000,H,W] transposed, clear errors', () => {
  const T = 20, N = 10000, H = 8;
  const data = new Uint8Array(T * N * H * H);
  for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) data[(t * N + n) * H * H] = (t * 7 + n) % 251;
  const c = clipsFromNpy({ dtype: 'uint8', shape: [T, N, H, H], data, fortranOrder: false }, 'mnist_test_seq.npy');
  assert.equal([c.n, c.t, c.h], [N, T, H]);
  for (const [n, t] of [[0, 0], [5, 3], [9999, 19]]) assert.is(c.frames[(n * T + t) * H * H], (t * 7 + n) % 251);
  const plain = clipsFromNpy({ dtype: 'float32', shape: [2, 3, 8, 8], data: new Float32Array(384).fill(0.5), fortranOrder: false }, 'x.npy');
  assert.equal([plain.n, plain.t, plain.frames[0]], [2, 3, 128]);
  const err = (f: () => unknown, re: RegExp) => { try { f(); assert.unreachable(); } catch (e) { assert.ok(e instanceof DriftlabError); assert.match((e as Error).message, re); } };
  err(() => clipsFromNpy({ dtype: 'uint8', shape: [2, 8, 8], data: new Uint8Array(128), fortranOrder: false }, 'a.npy'), /4-D/);
  err(() => clipsFromNpy({ dtype: 'int32', shape: [1, 1, 8, 8], data: new Int32Array(64), fortranOrder: false }, 'b.npy'), /dtype int32/);
  err(() => clipsFromNpy({ dtype: 'uint8', shape: [1, 1, 8, 9], data: new Uint8Array(72), fortranOrder: false }, 'c.npy'), /square/);
  err(() => clipsFromNpy({ dtype: 'float32', shape: [1, 1, 8, 8], data: new Float32Array(64).fill(2), fortranOrder: false }, 'd.npy'), /\[0,1\]/);
});

test('CLI writes [N,T,64,64] uint8 + trajectories, and refuses to overwrite', () => {
  const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'driftlab-mm-'));
  const out = path.join(dir, 'clips.npy'), tj = path.join(dir, 'traj.json');
  const run = () => spawnSync(process.execPath, [cli, 'data', 'moving-mnist', '--count', '3', '--frames', '7', '--seed', '4', '--out', out, '--trajectories', tj], { encoding: 'utf8' });
  const r = run();
  assert.is(r.status, 0, r.stderr);
  return readNpy(out).then((a) => {
    assert.equal(a.shape, [3, 7, 64, 64]);
    const ref = new MovingMnist({}, 4).generate(3, 7);
    assert.ok(Buffer.from(a.data as Uint8Array).equals(Buffer.from(ref.frames)));
    const j = JSON.parse(fs.readFileSync(tj, 'utf8'));
    assert.is(j.clips.length, 3);
    assert.is(j.clips[2].digits[1].positions.length, 7);
    const again = run();
    assert.is.not(again.status, 0);
    assert.match(again.stderr, /already exists/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

test.run();
