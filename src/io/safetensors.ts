/**
 * The safetensors checkpoint format (https://github.com/huggingface/safetensors):
 *
 *   [8 bytes]  N = header length, unsigned 64-bit little-endian
 *   [N bytes]  UTF-8 JSON header, padded with spaces to a multiple of 8:
 *              {"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [..],
 *               "data_offsets": [begin, end]}, ...}   (offsets relative to the byte buffer)
 *   [rest]     byte buffer: raw little-endian tensor data, tensors laid out contiguously
 *
 * Encoding is deterministic: tensor names are sorted, so identical input gives identical bytes.
 * Decoding validates everything and copies data into freshly allocated (aligned) typed arrays.
 */
import { endianness } from 'node:os';
import { DriftlabError } from '../util/errors.js';
import { readFileChecked, writeFileAtomic } from './atomic.js';

export type SafetensorsDtype = 'F32' | 'F64' | 'I32' | 'U8' | 'I64';
export type TensorData = Float32Array | Float64Array | Int32Array | Uint8Array | BigInt64Array;

export type NamedTensor = {
  dtype: SafetensorsDtype;
  shape: number[];
  data: TensorData;
};

export interface DecodedSafetensors {
  tensors: Record<string, NamedTensor>;
  metadata: Record<string, string>;
}

const ITEMSIZE: Record<SafetensorsDtype, number> = { F32: 4, F64: 8, I32: 4, U8: 1, I64: 8 };
const KNOWN_ELSEWHERE = ['F16', 'BF16', 'I8', 'I16', 'U16', 'U32', 'U64', 'BOOL', 'F8_E4M3', 'F8_E5M2'];
/** Header larger than this is treated as corruption rather than allocated. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

function isDtype(d: unknown): d is SafetensorsDtype {
  return typeof d === 'string' && Object.prototype.hasOwnProperty.call(ITEMSIZE, d);
}

function checkHostEndianness(): void {
  if (endianness() !== 'LE') {
    throw new DriftlabError('safetensors I/O needs a little-endian machine; this host is big-endian');
  }
}

function dataMatchesDtype(dtype: SafetensorsDtype, data: TensorData): boolean {
  switch (dtype) {
    case 'F32': return data instanceof Float32Array;
    case 'F64': return data instanceof Float64Array;
    case 'I32': return data instanceof Int32Array;
    case 'U8': return data instanceof Uint8Array;
    case 'I64': return data instanceof BigInt64Array;
  }
}

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function validShape(shape: unknown): shape is number[] {
  return Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && d >= 0);
}

/** Serialise tensors (+ optional string metadata) to safetensors bytes. */
export function encodeSafetensors(
  tensors: Record<string, NamedTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  checkHostEndianness();
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    const md: Record<string, string> = {};
    for (const k of Object.keys(metadata).sort()) {
      const v = metadata[k];
      if (typeof v !== 'string') throw new DriftlabError(`safetensors metadata value for "${k}" must be a string, got ${typeof v}`);
      md[k] = v;
    }
    header.__metadata__ = md;
  }
  let offset = 0;
  for (const name of names) {
    if (name === '__metadata__') throw new DriftlabError('a tensor cannot be named "__metadata__"; rename it');
    const t = tensors[name];
    if (!isDtype(t.dtype)) throw new DriftlabError(`tensor "${name}" has unsupported dtype ${String(t.dtype)}; use F32, F64, I32, U8 or I64`);
    if (!validShape(t.shape)) throw new DriftlabError(`tensor "${name}" has invalid shape ${JSON.stringify(t.shape)}; dims must be non-negative integers`);
    if (!dataMatchesDtype(t.dtype, t.data)) {
      throw new DriftlabError(`tensor "${name}" is declared ${t.dtype} but its data is a ${t.data.constructor.name}`);
    }
    if (t.data.length !== numel(t.shape)) {
      throw new DriftlabError(`tensor "${name}" has ${t.data.length} values but shape [${t.shape.join(', ')}] needs ${numel(t.shape)}`);
    }
    const nbytes = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: t.shape.slice(), data_offsets: [offset, offset + nbytes] };
    offset += nbytes;
  }
  let json = JSON.stringify(header);
  let headerBytes = new TextEncoder().encode(json);
  const pad = (8 - (headerBytes.length % 8)) % 8;
  if (pad > 0) {
    json += ' '.repeat(pad);
    headerBytes = new TextEncoder().encode(json);
  }
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const name of names) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), pos);
    pos += d.byteLength;
  }
  return out;
}

function makeTyped(dtype: SafetensorsDtype, bytes: Uint8Array): TensorData {
  // `bytes` is a fresh copy whose buffer starts at offset 0, so alignment is guaranteed.
  const b = bytes.buffer as ArrayBuffer;
  switch (dtype) {
    case 'F32': return new Float32Array(b, 0, bytes.byteLength / 4);
    case 'F64': return new Float64Array(b, 0, bytes.byteLength / 8);
    case 'I32': return new Int32Array(b, 0, bytes.byteLength / 4);
    case 'U8': return bytes;
    case 'I64': return new BigInt64Array(b, 0, bytes.byteLength / 8);
  }
}

/** Parse and validate safetensors bytes. `source` names the file in error messages. */
export function decodeSafetensors(bytes: Uint8Array, source = 'file'): DecodedSafetensors {
  checkHostEndianness();
  if (bytes.length < 8) {
    throw new DriftlabError(`${source} is too short to be a safetensors file (${bytes.length} bytes, need at least 8); re-save or re-download it`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    throw new DriftlabError(`${source}: header length ${n64} is absurd (> 100 MB); this is not a safetensors file or it is corrupted`);
  }
  const n = Number(n64);
  if (8 + n > bytes.length) {
    throw new DriftlabError(`${source}: header length ${n} goes beyond the file size ${bytes.length}; the file is truncated or not a safetensors file`);
  }
  let header: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
    header = JSON.parse(text);
  } catch {
    throw new DriftlabError(`${source}: header is not valid JSON; this is not a safetensors file or it is corrupted`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new DriftlabError(`${source}: header is not a JSON object; this is not a safetensors file`);
  }
  const entries = header as Record<string, unknown>;

  const metadata: Record<string, string> = {};
  if ('__metadata__' in entries) {
    const md = entries.__metadata__;
    if (typeof md !== 'object' || md === null || Array.isArray(md)) {
      throw new DriftlabError(`${source}: __metadata__ must be an object of strings`);
    }
    for (const [k, v] of Object.entries(md)) {
      if (typeof v !== 'string') throw new DriftlabError(`${source}: __metadata__ value for "${k}" is not a string`);
      metadata[k] = v;
    }
  }

  type Spec = { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number };
  const specs: Spec[] = [];
  for (const [name, raw] of Object.entries(entries)) {
    if (name === '__metadata__') continue;
    if (typeof raw !== 'object' || raw === null) throw new DriftlabError(`${source}: entry for tensor "${name}" is not an object`);
    const { dtype, shape, data_offsets: off } = raw as Record<string, unknown>;
    if (!isDtype(dtype)) {
      const hint = typeof dtype === 'string' && KNOWN_ELSEWHERE.includes(dtype) ? ' (valid safetensors, but not supported here)' : '';
      throw new DriftlabError(`${source}: tensor "${name}" has unknown dtype ${JSON.stringify(dtype)}${hint}; driftlab reads F32, F64, I32, U8 and I64`);
    }
    if (!validShape(shape)) throw new DriftlabError(`${source}: tensor "${name}" has invalid shape ${JSON.stringify(shape)}`);
    if (!Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isSafeInteger(x) && x >= 0) || off[0] > off[1]) {
      throw new DriftlabError(`${source}: tensor "${name}" has invalid data_offsets ${JSON.stringify(off)}; expected [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = off as [number, number];
    const want = numel(shape) * ITEMSIZE[dtype];
    if (end - begin !== want) {
      throw new DriftlabError(`${source}: tensor "${name}" data_offsets span ${end - begin} bytes but ${dtype} [${shape.join(', ')}] needs ${want}; the file is corrupted`);
    }
    specs.push({ name, dtype, shape, begin, end });
  }

  const dataLen = bytes.length - 8 - n;
  const promised = specs.reduce((m, s) => Math.max(m, s.end), 0);
  if (promised > dataLen) {
    throw new DriftlabError(`${source} is truncated: header promises ${promised} bytes of tensor data but the file has ${dataLen}; re-save or re-download the checkpoint`);
  }
  // Tensors must tile the byte buffer exactly: no overlaps, no holes.
  const byOffset = specs.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev = '';
  for (const s of byOffset) {
    if (s.begin < cursor) {
      throw new DriftlabError(`${source}: tensors "${prev}" and "${s.name}" have overlapping data_offsets; the file is corrupted`);
    }
    if (s.begin > cursor) {
      throw new DriftlabError(`${source}: ${s.begin - cursor} unused bytes before tensor "${s.name}" (data_offsets leave a gap); the file is corrupted`);
    }
    cursor = s.end;
    prev = s.name;
  }
  if (cursor !== dataLen) {
    throw new DriftlabError(`${source}: file has ${dataLen} bytes of tensor data but the header accounts for ${cursor}; the file is corrupted or has trailing garbage`);
  }

  const tensors: Record<string, NamedTensor> = {};
  const base = 8 + n;
  for (const s of specs) {
    // Explicit copy into a fresh buffer (=> aligned). Not bytes.slice(): on a Node Buffer that is a view.
    const copy = new Uint8Array(s.end - s.begin);
    copy.set(bytes.subarray(base + s.begin, base + s.end));
    tensors[s.name] = { dtype: s.dtype, shape: s.shape.slice(), data: makeTyped(s.dtype, copy) };
  }
  return { tensors, metadata };
}

/** Read and validate a safetensors file. */
export async function readSafetensors(path: string): Promise<DecodedSafetensors> {
  const bytes = await readFileChecked(path, 'checkpoint');
  return decodeSafetensors(bytes, path);
}

/** Write a safetensors file atomically (temp file + fsync + rename; replaces an existing file). */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, NamedTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}
