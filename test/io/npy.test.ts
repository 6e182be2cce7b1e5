import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DriftlabError } from '../../src/util/errors.js';
import { tempDir, throwsDriftlab } from '../helpers/common.js';
import { decodeNpy, encodeNpy, readNpy, writeNpy, type NpyArray } from '../../src/io/npy.js';
import { NpyAppendWriter } from '../../src/io/npy-append.js';



function ascii(s: string): number[] {
  return Array.from(s, (c) => c.charCodeAt(0));
}

/** A .npy file with an arbitrary header dict text, v1.0 or v2.0. */
function handBuilt(dict: string, data: Uint8Array, major = 1): Uint8Array {
  const pre = major === 1 ? 10 : 12;
  let h = dict;
  while ((pre + h.length + 1) % 64 !== 0) h += ' ';
  h += '\n';
  const out = new Uint8Array(pre + h.length + data.length);
  out.set([0x93, ...ascii('NUMPY'), major, 0], 0);
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, h.length, true);
  else dv.setUint32(8, h.length, true);
  out.set(ascii(h), pre);
  out.set(data, pre + h.length);
  return out;
}

test('encodes uint8 [2,3] exactly like numpy.save', () => {
  const enc = encodeNpy({ dtype: 'uint8', shape: [2, 3], data: Uint8Array.from([0, 1, 2, 3, 4, 255]), fortranOrder: false });
  const dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }";
  const header = '\x93NUMPY\x01\x00v\x00' + dict + ' '.repeat(128 - 10 - dict.length - 1) + '\n';
  assert.is(header.length, 128);
  assert.equal(Array.from(enc.subarray(0, 128)), ascii(header));
  assert.equal(Array.from(enc.subarray(128)), [0, 1, 2, 3, 4, 255]);
  assert.is(enc.length, 134);
});

test('header shapes: scalar, 1-d and long first axis use numpy tuple syntax and 64-byte alignment', () => {
  const cases: [number[], string][] = [[[], '()'], [[5], '(5,)'], [[123456789012, 0], '(123456789012, 0)']];
  for (const [shape, repr] of cases) {
    const n = shape.reduce((a, b) => a * b, 1);
    const enc = encodeNpy({ dtype: 'float32', shape, data: new Float32Array(n), fortranOrder: false });
    const hlen = enc[8] | (enc[9] << 8);
    assert.is((10 + hlen) % 64, 0, repr);
    const text = String.fromCharCode(...enc.subarray(10, 10 + hlen));
    assert.ok(text.startsWith(`{'descr': '<f4', 'fortran_order': False, 'shape': ${repr}, }`), text);
    assert.ok(text.endsWith(' \n'));
  }
});

test('round trip is bit-exact for every dtype', () => {
  const arrays: NpyArray[] = [
    { dtype: 'uint8', shape: [2, 2, 2], data: Uint8Array.from([0, 1, 2, 3, 252, 253, 254, 255]), fortranOrder: false },
    { dtype: 'float32', shape: [3], data: Float32Array.from([NaN, -0, 1e-45]), fortranOrder: false },
    { dtype: 'float64', shape: [], data: Float64Array.from([Math.E]), fortranOrder: false },
    { dtype: 'int32', shape: [2, 1], data: Int32Array.from([-2147483648, 2147483647]), fortranOrder: false },
    { dtype: 'int64', shape: [2], data: BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n]), fortranOrder: false },
    { dtype: 'float32', shape: [0, 3], data: new Float32Array(0), fortranOrder: false },
  ];
  for (const a of arrays) {
    const b = decodeNpy(encodeNpy(a), 'x.npy');
    assert.is(b.dtype, a.dtype);
    assert.equal(b.shape, a.shape);
    assert.is(b.fortranOrder, false);
    assert.is(b.data.constructor, a.data.constructor);
    assert.equal(
      Array.from(new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength)),
      Array.from(new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength)),
      a.dtype,
    );
  }
});

test('reads hand-built v1.0 / v2.0 headers, double quotes, Python 2 longs, <u1', () => {
  const f4 = new Uint8Array(Float32Array.from([1.5, -2]).buffer);
  const a = decodeNpy(handBuilt("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", f4, 2));
  assert.equal(Array.from(a.data as Float32Array), [1.5, -2]);
  const b = decodeNpy(handBuilt('{"shape": (1L, 2L), "fortran_order": False, "descr": "<u1"}', Uint8Array.from([3, 4])));
  assert.equal(b.shape, [1, 2]);
  assert.is(b.dtype, 'uint8');
  const c = decodeNpy(handBuilt("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(new BigInt64Array([-5n]).buffer), 1));
  assert.is((c.data as BigInt64Array)[0], -5n);
});

test('rejects big-endian, Fortran order, unsupported dtypes, bad magic, truncation', () => {
  const z = new Uint8Array(8);
  throwsDriftlab(() => decodeNpy(handBuilt("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", z), 'a.npy'), /a\.npy is big-endian \(>f4\).*astype\('<f4'\)/);
  throwsDriftlab(() => decodeNpy(handBuilt("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", z), 'a.npy'), /Fortran order.*ascontiguousarray/);
  throwsDriftlab(() => decodeNpy(handBuilt("{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }", z), 'a.npy'), /unsupported dtype <f2/);
  throwsDriftlab(() => decodeNpy(handBuilt("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", z), 'a.npy'), /structured/);
  throwsDriftlab(() => decodeNpy(handBuilt("{'descr': '<f4', 'fortran_order': False, 'shape': (2,", z), 'a.npy'), /cannot parse \.npy header/);
  throwsDriftlab(() => decodeNpy(Uint8Array.from(ascii('PK\x03\x04 not npy at all')), 'a.npy'), /not a \.npy file/);
  const v9 = handBuilt("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", z);
  v9[6] = 9;
  throwsDriftlab(() => decodeNpy(v9, 'a.npy'), /version 9\.0/);
  const good = encodeNpy({ dtype: 'float32', shape: [4], data: new Float32Array(4), fortranOrder: false });
  throwsDriftlab(() => decodeNpy(good.subarray(0, good.length - 1), 'a.npy'), /^a\.npy is truncated: header promises 16 bytes of array data \(float32 \(4,\)\) but the file has 15; re-save the file$/);
  throwsDriftlab(() => decodeNpy(good.subarray(0, 50), 'a.npy'), /a\.npy is truncated: the \.npy header needs 118 bytes/);
  const extra = new Uint8Array(good.length + 4);
  extra.set(good);
  throwsDriftlab(() => decodeNpy(extra, 'a.npy'), /4 bytes after the array data/);
  assert.equal(decodeNpy(extra, 'a.npy', { allowTrailing: true }).shape, [4]);
});

test('writeNpy / readNpy: no clobber unless overwrite, missing file error', async () => {
  const dir = tempDir('driftlab-npy-');
  const p = join(dir, 'a.npy');
  const arr: NpyArray = { dtype: 'int32', shape: [3], data: Int32Array.from([1, 2, 3]), fortranOrder: false };
  await writeNpy(p, arr);
  assert.equal(Array.from((await readNpy(p)).data as Int32Array), [1, 2, 3]);
  try {
    await writeNpy(p, arr);
    assert.unreachable('should refuse');
  } catch (e) {
    assert.instance(e, DriftlabError);
    assert.match((e as Error).message, /already exists/);
  }
  await writeNpy(p, { ...arr, data: Int32Array.from([4, 5, 6]) }, { overwrite: true });
  assert.equal(Array.from((await readNpy(p)).data as Int32Array), [4, 5, 6]);
  try {
    await readNpy(join(dir, 'missing.npy'));
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, DriftlabError);
    assert.match((e as Error).message, /not found: .*missing\.npy/);
  }
});

test('NpyAppendWriter: file is a valid .npy after every append (simulated kill)', async () => {
  const dir = tempDir('driftlab-npy-');
  const p = join(dir, 'frames.npy');
  const w = await NpyAppendWriter.create(p, 'float32', [2, 3]);
  let check = decodeNpy(readFileSync(p), p);
  assert.equal(check.shape, [0, 2, 3]);
  const headerLen = 10 + (readFileSync(p)[8] | (readFileSync(p)[9] << 8));
  assert.is(headerLen % 64, 0);
  const expected: number[] = [];
  for (let i = 0; i < 12; i++) {
    const frames = i % 3 === 2 ? 2 : 1; // sometimes two frames at once
    const buf = new Float32Array(6 * frames).map((_, k) => i * 100 + k);
    await w.append(buf);
    buf.fill(-1); // writer must have copied the data
    for (let k = 0; k < 6 * frames; k++) expected.push(i * 100 + k);
    // read without closing, as if the process were killed right here
    const bytes = readFileSync(p);
    check = decodeNpy(bytes, p);
    assert.equal(check.shape, [expected.length / 6, 2, 3]);
    assert.equal(Array.from(check.data as Float32Array), expected);
    assert.is(10 + (bytes[8] | (bytes[9] << 8)), headerLen, 'header size is fixed');
  }
  assert.is(w.length, expected.length / 6);
  await w.close();
  await w.close(); // idempotent
  assert.equal((await readNpy(p)).shape, [16, 2, 3]);
});

test('NpyAppendWriter: concurrent appends keep order; bad input is rejected', async () => {
  const dir = tempDir('driftlab-npy-');
  const p = join(dir, 'u8.npy');
  const w = await NpyAppendWriter.create(p, 'uint8', [2]);
  await Promise.all([w.append(Uint8Array.from([1, 2])), w.append(Uint8Array.from([3, 4])), w.append(Uint8Array.from([5, 6]))]);
  for (const [bad, re] of [[Uint8Array.from([1, 2, 3]), /not a whole number of frames/], [Float32Array.from([1, 2]), /cannot append Float32Array data to uint8/]] as const) {
    try {
      await w.append(bad);
      assert.unreachable('should reject');
    } catch (e) {
      assert.instance(e, DriftlabError);
      assert.match((e as Error).message, re);
    }
  }
  await w.close();
  try {
    await w.append(Uint8Array.from([1, 2]));
    assert.unreachable('should reject');
  } catch (e) {
    assert.match((e as Error).message, /writer is closed/);
  }
  const r = await readNpy(p);
  assert.equal(r.shape, [3, 2]);
  assert.equal(Array.from(r.data as Uint8Array), [1, 2, 3, 4, 5, 6]);
  try {
    await NpyAppendWriter.create(p, 'uint8', [2]);
    assert.unreachable('should refuse to clobber');
  } catch (e) {
    assert.match((e as Error).message, /already exists/);
  }
  const w2 = await NpyAppendWriter.create(p, 'uint8', [2], { overwrite: true });
  await w2.close();
  assert.equal((await readNpy(p)).shape, [0, 2]);
});

test.run();
