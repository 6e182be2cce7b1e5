import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { inflateSync } from 'node:zlib';
import { crc32, decodePng, encodePng, filterScanlines, readChunks } from '../../src/plot/png.js';

const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

test('crc32 known values', () => {
  assert.is(crc32(bytes('IEND')), 0xae426082);
  assert.is(crc32(bytes('123456789')), 0xcbf43926);
  assert.is(crc32(new Uint8Array(0)), 0);
});

test('file structure: signature, IHDR, IDAT, IEND with valid CRCs', () => {
  const png = encodePng(new Uint8Array([0, 128, 255, 7]), 2, 2, 1);
  assert.equal([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  const chunks = readChunks(png);
  assert.equal(chunks.map((c) => c.type), ['IHDR', 'IDAT', 'IEND']);
  const end = chunks[2]!;
  assert.is(end.data.length, 0);
  assert.is(end.crc, 0xae426082);
  assert.equal([...png.subarray(png.length - 12)], [0, 0, 0, 0, 73, 69, 78, 68, 0xae, 0x42, 0x60, 0x82]);
  const ihdr = chunks[0]!.data;
  assert.equal([...ihdr], [0, 0, 0, 2, 0, 0, 0, 2, 8, 0, 0, 0, 0]);
});

test('IDAT inflates to the expected filtered scanlines', () => {
  const px = new Uint8Array([10, 20, 30, 40, 50, 60]); // 3x2 gray
  const none = readChunks(encodePng(px, 3, 2, 1, { filter: 0 }))[1]!.data;
  assert.equal([...inflateSync(none)], [0, 10, 20, 30, 0, 40, 50, 60]);
  const sub = readChunks(encodePng(px, 3, 2, 1, { filter: 1 }))[1]!.data;
  assert.equal([...inflateSync(sub)], [1, 10, 10, 10, 1, 40, 10, 10]);
  const up = readChunks(encodePng(px, 3, 2, 1, { filter: 2 }))[1]!.data;
  assert.equal([...inflateSync(up)], [2, 10, 20, 30, 2, 30, 30, 30]);
  // adaptive output = filterScanlines output
  const adaptive = readChunks(encodePng(px, 3, 2, 1))[1]!.data;
  assert.equal([...inflateSync(adaptive)], [...filterScanlines(px, 3, 2, 1)]);
});

function randomImage(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out[i] = i % 7 < 3 ? (s >>> 16) & 255 : (i * 3) & 255; // mix of noise and gradients
  }
  return out;
}

for (const channels of [1, 3, 4] as const) {
  for (const filter of ['adaptive', 0, 1, 2, 3, 4] as const) {
    test(`round trip ${channels} channel(s), filter ${filter}`, () => {
      const [w, h] = [13, 9];
      const px = randomImage(w * h * channels, channels * 31 + 7);
      const dec = decodePng(encodePng(px, w, h, channels, { filter }));
      assert.is(dec.width, w);
      assert.is(dec.height, h);
      assert.is(dec.channels, channels);
      assert.equal([...dec.pixels], [...px]);
    });
  }
}

test('rejects bad input', () => {
  assert.throws(() => encodePng(new Uint8Array(5), 2, 2, 1));
  const png = encodePng(new Uint8Array(4), 2, 2, 1);
  png[png.length - 1] ^= 1; // corrupt IEND CRC
  assert.throws(() => decodePng(png), /CRC/);
  assert.throws(() => decodePng(new Uint8Array(20)), /not a PNG/);
});

test.run();
