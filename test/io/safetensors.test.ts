import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DriftlabError } from '../../src/util/errors.js';
import { tempDir, throwsDriftlab } from '../helpers/common.js';
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  writeSafetensors,
  type NamedTensor,
} from '../../src/io/safetensors.js';



/** Build a raw safetensors file from a header object and a data buffer (no validation). */
function rawFile(header: unknown, data: Uint8Array, headerText?: string): Uint8Array {
  const text = headerText ?? JSON.stringify(header);
  const h = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

const sample = (): Record<string, NamedTensor> => ({
  'w.weight': { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, -2.5, NaN, Infinity, -0, 1e-45]) },
  bias: { dtype: 'F64', shape: [3], data: Float64Array.from([Math.PI, -1e300, 5e-324]) },
  step: { dtype: 'I64', shape: [], data: BigInt64Array.from([-(2n ** 62n)]) },
  idx: { dtype: 'I32', shape: [2, 2], data: Int32Array.from([-2147483648, 2147483647, 0, 7]) },
  mask: { dtype: 'U8', shape: [5], data: Uint8Array.from([0, 1, 128, 254, 255]) },
  empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
});

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

test('round trip is bit-exact for every dtype, including NaN/-0/denormals', () => {
  const t = sample();
  const enc = encodeSafetensors(t, { step: '42', note: 'ünïcödé' });
  const { tensors, metadata } = decodeSafetensors(enc);
  assert.equal(metadata, { step: '42', note: 'ünïcödé' });
  assert.equal(Object.keys(tensors).sort(), Object.keys(t).sort());
  for (const [k, v] of Object.entries(t)) {
    assert.is(tensors[k].dtype, v.dtype, k);
    assert.equal(tensors[k].shape, v.shape, k);
    assert.is(tensors[k].data.constructor, v.data.constructor, k);
    assert.equal(Array.from(bytesOf(tensors[k].data)), Array.from(bytesOf(v.data)), k);
    assert.is(tensors[k].data.byteOffset % 8, 0, `${k} aligned`);
  }
});

test('encoding is deterministic and independent of key insertion order', () => {
  const a = sample();
  const b: Record<string, NamedTensor> = {};
  for (const k of Object.keys(a).reverse()) b[k] = a[k];
  const ea = encodeSafetensors(a, { x: '1', y: '2' });
  const eb = encodeSafetensors(b, { y: '2', x: '1' });
  assert.equal(Array.from(ea), Array.from(eb));
});

test('byte layout matches a hand-built file', () => {
  const enc = encodeSafetensors({
    b: { dtype: 'U8', shape: [3], data: Uint8Array.from([7, 8, 9]) },
    a: { dtype: 'F32', shape: [1], data: Float32Array.from([1]) },
  });
  const json = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[3],"data_offsets":[4,7]}}';
  const padded = json + ' '.repeat((8 - (json.length % 8)) % 8);
  assert.is(padded.length % 8, 0);
  const dv = new DataView(enc.buffer, enc.byteOffset, enc.byteLength);
  assert.is(dv.getUint32(0, true), padded.length, 'header length prefix (low word)');
  assert.is(dv.getUint32(4, true), 0, 'header length prefix (high word)');
  assert.is(new TextDecoder().decode(enc.subarray(8, 8 + padded.length)), padded);
  // float32 1.0 little-endian = 00 00 80 3f, then the three bytes
  assert.equal(Array.from(enc.subarray(8 + padded.length)), [0x00, 0x00, 0x80, 0x3f, 7, 8, 9]);
  assert.is(enc.length, 8 + padded.length + 7);
  // and a file built by hand (as another implementation would write it) decodes
  const hand = rawFile(null, Uint8Array.from([0, 0, 0x80, 0x3f, 7, 8, 9]), padded);
  const d = decodeSafetensors(hand);
  assert.equal(Array.from(d.tensors.a.data as Float32Array), [1]);
  assert.equal(Array.from(d.tensors.b.data as Uint8Array), [7, 8, 9]);
  assert.equal(d.metadata, {});
});

test('decodes tensors stored in non-alphabetical offset order and unaligned offsets', () => {
  const data = new Uint8Array(9);
  data[0] = 5; // U8 "z" first, then an F64 at offset 1 (unaligned)
  new DataView(data.buffer).setFloat64(1, -2.75, true);
  const f = rawFile({ z: { dtype: 'U8', shape: [1], data_offsets: [0, 1] }, a: { dtype: 'F64', shape: [1], data_offsets: [1, 9] } }, data);
  const d = decodeSafetensors(f);
  assert.is((d.tensors.a.data as Float64Array)[0], -2.75);
  assert.is((d.tensors.z.data as Uint8Array)[0], 5);
});

test('corrupt and truncated files give one-line DriftlabErrors', () => {
  const good = encodeSafetensors({ w: { dtype: 'F32', shape: [4], data: Float32Array.from([1, 2, 3, 4]) } });
  throwsDriftlab(() => decodeSafetensors(new Uint8Array(5), 'm.safetensors'), /^m\.safetensors is too short.*5 bytes/);
  throwsDriftlab(() => decodeSafetensors(good.slice(0, 20), 'm.st'), /m\.st: header length \d+ goes beyond the file size 20/);
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 2n ** 40n, true);
  throwsDriftlab(() => decodeSafetensors(huge, 'm.st'), /absurd \(> 100 MB\)/);
  throwsDriftlab(() => decodeSafetensors(rawFile(null, new Uint8Array(0), '{"w": [1, 2'), 'm.st'), /header is not valid JSON/);
  throwsDriftlab(() => decodeSafetensors(rawFile(null, new Uint8Array(0), '[1,2]'), 'm.st'), /not a JSON object/);
  throwsDriftlab(
    () => decodeSafetensors(rawFile({ w: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4)), 'm.st'),
    /unknown dtype "F16".*F32, F64, I32, U8 and I64/,
  );
  throwsDriftlab(
    () => decodeSafetensors(rawFile({ w: { dtype: 'Q4', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4)), 'm.st'),
    /unknown dtype "Q4"/,
  );
  throwsDriftlab(
    () => decodeSafetensors(rawFile({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 12] } }, new Uint8Array(12)), 'm.st'),
    /span 12 bytes but F32 \[2\] needs 8/,
  );
  throwsDriftlab(
    () => decodeSafetensors(rawFile({ w: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, new Uint8Array(8)), 'm.st'),
    /invalid data_offsets/,
  );
  throwsDriftlab(
    () => decodeSafetensors(rawFile({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), 'm.st'),
    /invalid shape/,
  );
  throwsDriftlab(
    () => decodeSafetensors(rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)), 'm.st'),
    /"a" and "b" have overlapping data_offsets/,
  );
  throwsDriftlab(
    () => decodeSafetensors(rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), 'm.st'),
    /4 unused bytes before tensor "a"/,
  );
  throwsDriftlab(
    () => decodeSafetensors(rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(9)), 'm.st'),
    /file has 9 bytes of tensor data but the header accounts for 4/,
  );
  throwsDriftlab(
    () => decodeSafetensors(rawFile({ __metadata__: { step: 3 } }, new Uint8Array(0)), 'm.st'),
    /__metadata__ value for "step" is not a string/,
  );
  // truncated: drop the last 3 bytes of tensor data
  throwsDriftlab(
    () => decodeSafetensors(good.slice(0, good.length - 3), 'ckpt.safetensors'),
    /^ckpt\.safetensors is truncated: header promises 16 bytes of tensor data but the file has 13; re-save or re-download the checkpoint$/,
  );
});

test('encode rejects inconsistent tensors', () => {
  throwsDriftlab(() => encodeSafetensors({ w: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }), /has 2 values but shape \[3\] needs 3/);
  throwsDriftlab(() => encodeSafetensors({ w: { dtype: 'F32', shape: [2], data: new Float64Array(2) } }), /declared F32 but its data is a Float64Array/);
  throwsDriftlab(() => encodeSafetensors({ __metadata__: { dtype: 'U8', shape: [0], data: new Uint8Array(0) } }), /__metadata__/);
});

test('subarray views are encoded from their own offset, not the whole buffer', () => {
  const big = Float32Array.from([9, 9, 1, 2, 9]);
  const enc = encodeSafetensors({ v: { dtype: 'F32', shape: [2], data: big.subarray(2, 4) } });
  assert.equal(Array.from(decodeSafetensors(enc).tensors.v.data as Float32Array), [1, 2]);
});

test('readSafetensors / writeSafetensors: atomic write, no temp files left, missing file error', async () => {
  const dir = tempDir('driftlab-st-');
  const p = join(dir, 'model.safetensors');
  await writeSafetensors(p, sample(), { a: 'b' });
  await writeSafetensors(p, sample(), { a: 'c' }); // overwrite is allowed for checkpoints
  assert.equal(readdirSync(dir), ['model.safetensors']);
  const back = await readSafetensors(p);
  assert.equal(back.metadata, { a: 'c' });
  assert.equal(Array.from(readFileSync(p)), Array.from(encodeSafetensors(sample(), { a: 'c' })));
  const missing = join(dir, 'nope.safetensors');
  try {
    await readSafetensors(missing);
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, DriftlabError);
    assert.ok((e as Error).message.includes(missing), (e as Error).message);
  }
  writeFileSync(join(dir, 'bad.safetensors'), new Uint8Array(3));
  try {
    await readSafetensors(join(dir, 'bad.safetensors'));
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, DriftlabError);
    assert.match((e as Error).message, /bad\.safetensors is too short/);
  }
});

test('decoding a Node Buffer (pooled, non-zero byteOffset) copies the right bytes', () => {
  const enc = encodeSafetensors(sample());
  const pool = Buffer.alloc(enc.length + 3);
  pool.set(enc, 3);
  const d = decodeSafetensors(pool.subarray(3), 'buf');
  for (const [k, v] of Object.entries(sample())) {
    assert.equal(Array.from(bytesOf(d.tensors[k].data)), Array.from(bytesOf(v.data)), k);
  }
});

test.run();
