/**
 * NumPy .npy files (format spec: numpy/lib/format.py, NEP 1).
 *
 *   "\x93NUMPY" major minor  HEADER_LEN (u16 LE for v1.0, u32 LE for v2.0/3.0)
 *   header: Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 *           padded with spaces and a final '\n' so that magic+len+header is a multiple of 64
 *   data:   C-order raw bytes, prod(shape) * itemsize
 *
 * We write v1.0 exactly as numpy's np.save does (including its 21-digit growth room for the
 * first axis), and read v1.0/2.0/3.0 little-endian C-order arrays of the dtypes below.
 * Streaming writes (a growing first axis): npy-append.ts.
 */
import { endianness } from 'node:os';
import { DriftlabError } from '../util/errors.js';
import { readFileChecked, writeFileNoClobber } from './atomic.js';

export type NpyDtype = 'uint8' | 'float32' | 'float64' | 'int32' | 'int64';
export type NpyData = Uint8Array | Float32Array | Float64Array | Int32Array | BigInt64Array;

export type NpyArray = {
  dtype: NpyDtype;
  shape: number[];
  data: NpyData;
  fortranOrder: false;
};

export interface DecodeNpyOptions {
  /** Ignore bytes after the array data (numpy itself does). Default false: reject them. */
  allowTrailing?: boolean;
}

export const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ARRAY_ALIGN = 64;
const GROWTH_AXIS_MAX_DIGITS = 21;
export const DESCR: Record<NpyDtype, string> = { uint8: '|u1', float32: '<f4', float64: '<f8', int32: '<i4', int64: '<i8' };
export const ITEMSIZE: Record<NpyDtype, number> = { uint8: 1, float32: 4, float64: 8, int32: 4, int64: 8 };

export function checkHost(): void {
  if (endianness() !== 'LE') throw new DriftlabError('npy I/O needs a little-endian machine; this host is big-endian');
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function dataMatches(dtype: NpyDtype, data: NpyData): boolean {
  switch (dtype) {
    case 'uint8': return data instanceof Uint8Array;
    case 'float32': return data instanceof Float32Array;
    case 'float64': return data instanceof Float64Array;
    case 'int32': return data instanceof Int32Array;
    case 'int64': return data instanceof BigInt64Array;
  }
}

/** Python repr of a shape tuple: (), (5,), (2, 3). */
export function shapeRepr(shape: readonly number[]): string {
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(', ')})`;
}

function dictRepr(dtype: NpyDtype, shape: readonly number[]): string {
  return `{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': ${shapeRepr(shape)}, }`;
}

/** Build a full v1.0 preamble (magic..'\n') of exactly `total` bytes, or the numpy default size. */
export function buildHeader(dtype: NpyDtype, shape: readonly number[], total?: number): Uint8Array {
  let dict = dictRepr(dtype, shape);
  if (total === undefined) {
    // numpy >= 1.24 leaves room so the first axis can grow in place.
    if (shape.length > 0) dict += ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length));
    const hlen = dict.length + 1;
    const padlen = ARRAY_ALIGN - ((MAGIC.length + 2 + 2 + hlen) % ARRAY_ALIGN);
    total = MAGIC.length + 2 + 2 + hlen + padlen;
  }
  const room = total - (MAGIC.length + 4) - 1;
  if (dict.length > room) throw new DriftlabError(`npy header for shape ${shapeRepr(shape)} does not fit in ${total} bytes`);
  if (total - 10 > 0xffff) throw new DriftlabError(`npy header too large (${total} bytes) for format v1.0; use fewer dimensions`);
  const out = new Uint8Array(total);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, total - 10, true);
  const text = dict + ' '.repeat(room - dict.length) + '\n';
  for (let i = 0; i < text.length; i++) out[10 + i] = text.charCodeAt(i);
  return out;
}

function validateArray(arr: NpyArray): void {
  if (!Object.prototype.hasOwnProperty.call(DESCR, arr.dtype)) {
    throw new DriftlabError(`unsupported npy dtype ${String(arr.dtype)}; use uint8, float32, float64, int32 or int64`);
  }
  if (!Array.isArray(arr.shape) || !arr.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new DriftlabError(`invalid npy shape ${JSON.stringify(arr.shape)}; dims must be non-negative integers`);
  }
  if (!dataMatches(arr.dtype, arr.data)) {
    throw new DriftlabError(`npy array declared ${arr.dtype} but its data is a ${arr.data.constructor.name}`);
  }
  if (arr.data.length !== numel(arr.shape)) {
    throw new DriftlabError(`npy array has ${arr.data.length} values but shape ${shapeRepr(arr.shape)} needs ${numel(arr.shape)}`);
  }
}

export function bytesOf(d: NpyData): Uint8Array {
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** Serialise to .npy v1.0 bytes, byte-identical to numpy's np.save for the same array. */
export function encodeNpy(arr: NpyArray): Uint8Array {
  checkHost();
  validateArray(arr);
  const header = buildHeader(arr.dtype, arr.shape);
  const out = new Uint8Array(header.length + arr.data.byteLength);
  out.set(header, 0);
  out.set(bytesOf(arr.data), header.length);
  return out;
}

// ---- header parsing: a tiny parser for the Python literal subset numpy writes ----

type PyValue = string | number | boolean | null | PyValue[] | { [k: string]: PyValue };

function parsePyLiteral(text: string): PyValue {
  let i = 0;
  const ws = () => { while (i < text.length && /\s/.test(text[i])) i++; };
  const fail = (): never => { throw new Error('bad literal'); };
  const value = (): PyValue => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: Record<string, PyValue> = {};
      for (;;) {
        ws();
        if (text[i] === '}') { i++; return obj; }
        const k = value();
        if (typeof k !== 'string') fail();
        ws();
        if (text[i++] !== ':') fail();
        obj[k as string] = value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== '}') fail();
      }
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      i++;
      const arr: PyValue[] = [];
      for (;;) {
        ws();
        if (text[i] === close) { i++; return arr; }
        arr.push(value());
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== close) fail();
      }
    }
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) fail();
      const s = text.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    const m = /^(True|False|None|-?\d+L?)/.exec(text.slice(i));
    if (!m) return fail();
    i += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    if (m[0] === 'None') return null;
    return Number(m[0].replace('L', ''));
  };
  const v = value();
  ws();
  if (i !== text.length) fail();
  return v;
}

const DESCR_TO_DTYPE: Record<string, NpyDtype> = {
  '|u1': 'uint8', '<u1': 'uint8', '>u1': 'uint8', '=u1': 'uint8', '|B': 'uint8',
  '<f4': 'float32', '<f8': 'float64', '<i4': 'int32', '<i8': 'int64',
};

/** Parse and validate .npy bytes. `source` names the file in error messages. */
export function decodeNpy(bytes: Uint8Array, source = 'npy file', opts: DecodeNpyOptions = {}): NpyArray {
  checkHost();
  if (bytes.length < 10 || !MAGIC.every((b, k) => bytes[k] === b)) {
    throw new DriftlabError(`${source} is not a .npy file (missing \\x93NUMPY magic); pass a file written by numpy.save or driftlab`);
  }
  const major = bytes[6];
  const minor = bytes[7];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let hlen: number;
  let start: number;
  if (major === 1) {
    hlen = dv.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new DriftlabError(`${source} is truncated inside the .npy preamble; re-save the file`);
    hlen = dv.getUint32(8, true);
    start = 12;
  } else {
    throw new DriftlabError(`${source} uses .npy format version ${major}.${minor}; driftlab reads versions 1.0, 2.0 and 3.0`);
  }
  if (start + hlen > bytes.length) {
    throw new DriftlabError(`${source} is truncated: the .npy header needs ${hlen} bytes but the file ends after ${bytes.length - start}; re-save the file`);
  }
  const headerBytes = bytes.subarray(start, start + hlen);
  let text: string;
  try {
    text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1', { fatal: true }).decode(headerBytes);
  } catch {
    throw new DriftlabError(`${source}: .npy header is not valid text; the file is corrupted`);
  }
  let dict: PyValue;
  try {
    dict = parsePyLiteral(text);
  } catch {
    throw new DriftlabError(`${source}: cannot parse .npy header ${JSON.stringify(text.trim().slice(0, 80))}; the file is corrupted`);
  }
  if (typeof dict !== 'object' || dict === null || Array.isArray(dict)) {
    throw new DriftlabError(`${source}: .npy header is not a dict; the file is corrupted`);
  }
  const { descr, fortran_order: fortran, shape } = dict as Record<string, PyValue>;
  if (typeof descr !== 'string') {
    throw new DriftlabError(`${source}: unsupported .npy dtype (structured or missing descr); save a plain numeric array`);
  }
  if (descr.startsWith('>') && descr !== '>u1') {
    throw new DriftlabError(`${source} is big-endian (${descr}); re-save it little-endian, e.g. np.save(path, arr.astype('<${descr.slice(1)}'))`);
  }
  const dtype = DESCR_TO_DTYPE[descr];
  if (!dtype) {
    throw new DriftlabError(`${source} has unsupported dtype ${descr}; driftlab reads uint8, float32, float64, int32 and int64`);
  }
  if (fortran === true) {
    throw new DriftlabError(`${source} is stored in Fortran order; re-save it with np.save(path, np.ascontiguousarray(arr))`);
  }
  if (fortran !== false) throw new DriftlabError(`${source}: .npy header has no valid fortran_order; the file is corrupted`);
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw new DriftlabError(`${source}: .npy header has invalid shape ${JSON.stringify(shape)}; the file is corrupted`);
  }
  const dims = shape as number[];
  const want = numel(dims) * ITEMSIZE[dtype];
  const dataStart = start + hlen;
  const have = bytes.length - dataStart;
  if (have < want) {
    throw new DriftlabError(`${source} is truncated: header promises ${want} bytes of array data (${dtype} ${shapeRepr(dims)}) but the file has ${have}; re-save the file`);
  }
  if (have > want && !opts.allowTrailing) {
    throw new DriftlabError(`${source} has ${have - want} bytes after the array data (${dtype} ${shapeRepr(dims)}); the file is corrupted or was interrupted mid-append`);
  }
  // Explicit copy into a fresh buffer (=> aligned). Not bytes.slice(): on a Node Buffer that is a view.
  const copy = new Uint8Array(want);
  copy.set(bytes.subarray(dataStart, dataStart + want));
  const b = copy.buffer as ArrayBuffer;
  let data: NpyData;
  switch (dtype) {
    case 'uint8': data = copy; break;
    case 'float32': data = new Float32Array(b, 0, want / 4); break;
    case 'float64': data = new Float64Array(b, 0, want / 8); break;
    case 'int32': data = new Int32Array(b, 0, want / 4); break;
    case 'int64': data = new BigInt64Array(b, 0, want / 8); break;
  }
  return { dtype, shape: dims.slice(), data, fortranOrder: false };
}

export async function readNpy(path: string, opts: DecodeNpyOptions = {}): Promise<NpyArray> {
  return decodeNpy(await readFileChecked(path, 'npy file'), path, opts);
}

/** Write a .npy file atomically; refuses to replace an existing file unless overwrite is true. */
export async function writeNpy(path: string, arr: NpyArray, opts: { overwrite?: boolean } = {}): Promise<void> {
  await writeFileNoClobber(path, encodeNpy(arr), opts);
}

