import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DriftlabError } from '../../src/util/errors.js';
import { tempDir, rejectsDriftlab } from '../helpers/common.js';
import { loadBundledMnist, loadIdx, MnistBatches, toFloat, type MnistBatchState } from '../../datasets/mnist/index.js';


function idx(magic: number, dims: number[], payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, magic, false);
  dims.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
  out.set(payload, 4 + 4 * dims.length);
  return out;
}

test('bundled MNIST: 10,000 digits, labels 0..9, all classes, package order, uint8 pixels', () => {
  const m = loadBundledMnist();
  assert.is(m.n, 10000);
  assert.is(m.images.length, 10000 * 28 * 28);
  assert.is(m.labels.length, 10000);
  const counts = new Array(10).fill(0);
  for (const l of m.labels) counts[l]++;
  assert.equal(counts, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
  for (let i = 1; i < m.n; i++) assert.ok(m.labels[i] >= m.labels[i - 1], 'grouped by class in package order');
  let max = 0;
  let ink = 0;
  for (const v of m.images) {
    if (v > max) max = v;
    if (v > 0) ink++;
  }
  assert.is(max, 255);
  assert.ok(ink / m.images.length > 0.1 && ink / m.images.length < 0.3, `ink fraction ${ink / m.images.length}`);
  // spot-check against the package's raw floats
  const pkg = createRequire(import.meta.url)('mnist') as Record<number, { raw: number[] }>;
  const firstThree = 1001 + 1127 + 991; // index of the first '3'
  for (let j = 0; j < 784; j++) {
    assert.is(m.images[j], Math.round(pkg[0].raw[j] * 255));
    assert.is(m.images[firstThree * 784 + j], Math.round(pkg[3].raw[j] * 255));
  }
  assert.is(loadBundledMnist(), m, 'cached');
});

test('toFloat maps 0..255 to [-1, 1]', () => {
  const f = toFloat(Uint8Array.from([0, 255, 51, 128]));
  assert.is(f[0], -1);
  assert.is(f[1], 1);
  assert.ok(Math.abs(f[2] - (51 / 127.5 - 1)) < 1e-7);
  assert.ok(Math.abs(f[3] - (128 / 127.5 - 1)) < 1e-7);
});

test('loadIdx reads plain and gzipped IDX files', async () => {
  const dir = tempDir('driftlab-idx-');
  const pixels = Uint8Array.from({ length: 3 * 4 * 5 }, (_, i) => (i * 7) % 256);
  const imgs = idx(0x803, [3, 4, 5], pixels);
  const labs = idx(0x801, [3], Uint8Array.from([7, 0, 9]));
  writeFileSync(join(dir, 'img'), imgs);
  writeFileSync(join(dir, 'lab'), labs);
  writeFileSync(join(dir, 'img.gz'), gzipSync(imgs));
  writeFileSync(join(dir, 'lab.gz'), gzipSync(labs));
  for (const [a, b] of [['img', 'lab'], ['img.gz', 'lab.gz'], ['img', 'lab.gz']]) {
    const d = await loadIdx(join(dir, a), join(dir, b));
    assert.is(d.n, 3);
    assert.is(d.rows, 4);
    assert.is(d.cols, 5);
    assert.equal(Array.from(d.images), Array.from(pixels));
    assert.equal(Array.from(d.labels!), [7, 0, 9]);
  }
  const noLabels = await loadIdx(join(dir, 'img.gz'));
  assert.is(noLabels.labels, null);
  assert.is(noLabels.n, 3);
});

test('loadIdx errors: wrong magic, truncated, trailing bytes, count mismatch, bad gzip, missing', async () => {
  const dir = tempDir('driftlab-idx-');
  const imgs = idx(0x803, [2, 2, 2], new Uint8Array(8));
  const labs = idx(0x801, [2], Uint8Array.from([1, 2]));
  const f = (name: string, data: Uint8Array) => {
    writeFileSync(join(dir, name), data);
    return join(dir, name);
  };
  const img = f('train-images-idx3-ubyte', imgs);
  const lab = f('train-labels-idx1-ubyte.gz', gzipSync(labs));
  await rejectsDriftlab(loadIdx(lab), /train-labels-idx1-ubyte\.gz: wrong magic 0x00000801 \(that is an IDX label file\); pass the images file$/);
  await rejectsDriftlab(loadIdx(img, img), /wrong magic 0x00000803 \(that is an IDX image file\); pass the labels file$/);
  await rejectsDriftlab(loadIdx(f('zip', Uint8Array.from([0x50, 0x4b, 3, 4, 0, 0]))), /wrong magic 0x504b0304 \(not an IDX file\)/);
  await rejectsDriftlab(loadIdx(f('short', Uint8Array.from([0, 0]))), /too short/);
  await rejectsDriftlab(loadIdx(f('trunc', imgs.subarray(0, imgs.length - 3))), /trunc is truncated: header promises 2 x 2 x 2 \(8 bytes\) but the file has 5; re-download it/);
  await rejectsDriftlab(loadIdx(f('trunc.gz', gzipSync(imgs.subarray(0, 12)))), /truncated inside its IDX header/);
  const extra = new Uint8Array(imgs.length + 2);
  extra.set(imgs);
  await rejectsDriftlab(loadIdx(f('extra', extra)), /2 unexpected bytes after the 2 x 2 x 2 images data/);
  await rejectsDriftlab(loadIdx(img, f('lab3', idx(0x801, [3], new Uint8Array(3)))), /has 3 labels but .* has 2 images; pass matching files/);
  await rejectsDriftlab(loadIdx(f('bad.gz', gzipSync(imgs).subarray(0, 15))), /gzip data is corrupt or truncated/);
  await rejectsDriftlab(loadIdx(join(dir, 'missing-images')), /not found: .*missing-images/);
  assert.is((await loadIdx(img, lab)).n, 2);
});

/** A small synthetic dataset whose image i is filled with a ramp tagged by i. */
function synth(n: number, rows = 3, cols = 4) {
  const images = new Uint8Array(n * rows * cols);
  for (let i = 0; i < n; i++) for (let k = 0; k < rows * cols; k++) images[i * rows * cols + k] = (i * 16 + k) % 256;
  const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
  return { images, labels, n, rows, cols };
}

test('MnistBatches: same seed => same stream; different seed => different; epochs are permutations', () => {
  const d = synth(10);
  const a = new MnistBatches(d, { batchSize: 4, seed: 7 });
  const b = new MnistBatches(d, { batchSize: 4, seed: 7 });
  const c = new MnistBatches(d, { batchSize: 4, seed: 8 });
  const seenA: number[] = [];
  const seenC: number[] = [];
  for (let i = 0; i < 5; i++) {
    const ba = a.next();
    const bb = b.next();
    assert.equal(Array.from(ba.x), Array.from(bb.x));
    assert.equal(Array.from(ba.labels), Array.from(bb.labels));
    assert.is(ba.x.length, 4 * 3 * 4);
    for (let j = 0; j < 4; j++) {
      const idx = ba.indices[j];
      assert.is(ba.labels[j], idx % 10);
      assert.is(ba.x[j * 12 + 5], Math.fround(((idx * 16 + 5) % 256) / 127.5 - 1), 'pixels match the image, no flip by default');
    }
    seenA.push(...ba.indices);
    seenC.push(...c.next().indices);
  }
  assert.equal(seenA.slice(0, 10).sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'epoch 0 is a permutation');
  assert.equal(seenA.slice(10, 20).sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'epoch 1 is a permutation');
  assert.not.equal(seenA.slice(0, 10), seenA.slice(10, 20), 'reshuffled per epoch');
  assert.not.equal(seenA, seenC);
  assert.equal(a.progress, { epoch: 1, position: 10 });
});

test('MnistBatches: exact resume mid-epoch from a JSON round-tripped state (with flips)', () => {
  const d = synth(13);
  const a = new MnistBatches(d, { batchSize: 5, seed: 123, flip: true });
  a.next();
  a.next();
  a.next(); // 15 examples in: epoch 1, position 2
  const saved = JSON.parse(JSON.stringify(a.state())) as MnistBatchState;
  assert.is(saved.epoch, 1);
  assert.is(saved.position, 2);
  const b = new MnistBatches(d, { batchSize: 5, seed: 999, flip: true }); // seed comes from the state
  b.setState(saved);
  let flipped = 0;
  for (let i = 0; i < 8; i++) {
    const ba = a.next();
    const bb = b.next();
    assert.equal(Array.from(bb.indices), Array.from(ba.indices), `batch ${i}`);
    assert.equal(Array.from(bb.x), Array.from(ba.x), `batch ${i}`);
    for (let j = 0; j < 5; j++) {
      const idx = ba.indices[j];
      const first = ba.x[j * 12]; // row 0, col 0
      const want = Math.fround(((idx * 16) % 256) / 127.5 - 1);
      const wantFlipped = Math.fround(((idx * 16 + 3) % 256) / 127.5 - 1);
      assert.ok(first === want || first === wantFlipped);
      if (first === wantFlipped) flipped++;
    }
  }
  assert.ok(flipped > 5 && flipped < 35, `about half flipped, got ${flipped}/40`);
});

test('MnistBatches: invalid options and mismatched state are DriftlabErrors', () => {
  const d = synth(6);
  assert.throws(() => new MnistBatches(d, { batchSize: 0, seed: 1 }), (e: unknown) => e instanceof DriftlabError && /batch size/.test((e as Error).message));
  assert.throws(() => new MnistBatches({ ...d, labels: new Uint8Array(2) }, { batchSize: 2, seed: 1 }), (e: unknown) => e instanceof DriftlabError);
  const it = new MnistBatches(d, { batchSize: 2, seed: 1 });
  const other = new MnistBatches(synth(7), { batchSize: 2, seed: 1 });
  assert.throws(() => it.setState(other.state()), (e: unknown) => e instanceof DriftlabError && /saved for a dataset of 7 examples but this one has 6/.test((e as Error).message));
  assert.throws(() => it.setState({} as MnistBatchState), (e: unknown) => e instanceof DriftlabError && /malformed/.test((e as Error).message));
  const unlabeled = new MnistBatches({ ...d, labels: null }, { batchSize: 3, seed: 1 });
  assert.equal(Array.from(unlabeled.next().labels), [-1, -1, -1]);
});

test('MnistBatches on bundled MNIST gives [B,28,28,1] batches in [-1,1]', () => {
  const it = new MnistBatches(loadBundledMnist(), { batchSize: 16, seed: 0 });
  const b = it.next();
  assert.is(b.x.length, 16 * 28 * 28);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of b.x) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  assert.is(lo, -1);
  assert.ok(hi <= 1 && hi > 0.5);
  for (const l of b.labels) assert.ok(l >= 0 && l <= 9);
});

test.run();
