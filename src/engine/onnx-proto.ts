/**
 * ONNX ModelProto in and out, without dependencies: a protobuf writer for the subset of onnx.proto
 * driftlab emits, and a reader strict enough to validate (and inspect) such files before they
 * reach onnxruntime. Field numbers are those of onnx/onnx.proto (IR version 8, opset 17).
 *
 * Wire format: each field is a varint key (field << 3 | wire type) followed by a varint (type 0),
 * 8 bytes (1), a varint length and that many bytes (2: strings, bytes, sub-messages), or 4 bytes
 * (5). Repeated scalars may be packed (one length-delimited run); the reader accepts both forms.
 */
import { DriftlabError } from '../util/errors.js';

/** TensorProto.DataType values driftlab uses */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7 } as const;
const ELEM_BYTES: Record<number, number> = { 1: 4, 2: 1, 3: 1, 6: 4, 7: 8 };

/** AttributeProto.AttributeType values */
export const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

export interface TensorProto { name: string; dims: number[]; dataType: number; rawData: Uint8Array }
export interface AttributeProto {
  name: string; type: number;
  f?: number; i?: number; s?: string; t?: TensorProto; floats?: number[]; ints?: number[];
}
export interface NodeProto { name: string; opType: string; domain: string; inputs: string[]; outputs: string[]; attributes: AttributeProto[] }
/** a tensor-typed graph input or output; string dims are symbolic ('batch') */
export interface ValueInfoProto { name: string; elemType: number; dims: (number | string)[] }
export interface GraphProto { name: string; nodes: NodeProto[]; initializers: TensorProto[]; inputs: ValueInfoProto[]; outputs: ValueInfoProto[] }
export interface ModelProto {
  irVersion: number;
  opsetImports: { domain: string; version: number }[];
  producerName: string;
  producerVersion: string;
  docString: string;
  graph: GraphProto;
  metadata: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------
// writer
// ---------------------------------------------------------------------------------------------
const utf8 = new TextEncoder();

class Writer {
  private parts: Uint8Array[] = [];
  private cur: number[] = [];
  private flush() { if (this.cur.length) { this.parts.push(Uint8Array.from(this.cur)); this.cur = []; } }
  private varint(v: number) {
    if (v >= 0 && v < 2 ** 31) {
      while (v > 127) { this.cur.push((v & 127) | 128); v >>>= 7; }
      this.cur.push(v);
      return;
    }
    let n = BigInt.asUintN(64, BigInt(v)); // negatives: 10-byte two's complement, as protobuf int64
    while (n > 127n) { this.cur.push(Number(n & 127n) | 128); n >>= 7n; }
    this.cur.push(Number(n));
  }
  private key(field: number, wire: number) { this.varint(field * 8 + wire); }
  int(field: number, v: number) { this.key(field, 0); this.varint(v); return this; }
  float(field: number, v: number) {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.cur.push(...b);
    return this;
  }
  bytes(field: number, b: Uint8Array) {
    this.key(field, 2);
    this.varint(b.length);
    this.flush();
    this.parts.push(b);
    return this;
  }
  string(field: number, s: string) { return this.bytes(field, utf8.encode(s)); }
  message(field: number, w: Writer) { return this.bytes(field, w.finish()); }
  finish(): Uint8Array {
    this.flush();
    const n = this.parts.reduce((a, p) => a + p.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of this.parts) { out.set(p, o); o += p.length; }
    return out;
  }
}

function writeTensor(t: TensorProto): Writer {
  const w = new Writer();
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.dataType).string(8, t.name).bytes(9, t.rawData);
  return w;
}

function writeAttribute(a: AttributeProto): Writer {
  const w = new Writer().string(1, a.name);
  if (a.f !== undefined) w.float(2, a.f);
  if (a.i !== undefined) w.int(3, a.i);
  if (a.s !== undefined) w.string(4, a.s);
  if (a.t !== undefined) w.message(5, writeTensor(a.t));
  for (const f of a.floats ?? []) w.float(7, f);
  for (const i of a.ints ?? []) w.int(8, i);
  return w.int(20, a.type);
}

function writeNode(n: NodeProto): Writer {
  const w = new Writer();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name).string(4, n.opType);
  for (const a of n.attributes) w.message(5, writeAttribute(a));
  if (n.domain) w.string(7, n.domain);
  return w;
}

function writeValueInfo(v: ValueInfoProto): Writer {
  const shape = new Writer();
  for (const d of v.dims) shape.message(1, typeof d === 'number' ? new Writer().int(1, d) : new Writer().string(2, d));
  const tensorType = new Writer().int(1, v.elemType).message(2, shape);
  return new Writer().string(1, v.name).message(2, new Writer().message(1, tensorType));
}

export function encodeModel(m: ModelProto): Uint8Array {
  const g = new Writer();
  for (const n of m.graph.nodes) g.message(1, writeNode(n));
  g.string(2, m.graph.name);
  for (const t of m.graph.initializers) g.message(5, writeTensor(t));
  for (const v of m.graph.inputs) g.message(11, writeValueInfo(v));
  for (const v of m.graph.outputs) g.message(12, writeValueInfo(v));
  const w = new Writer().int(1, m.irVersion).string(2, m.producerName).string(3, m.producerVersion);
  if (m.docString) w.string(6, m.docString);
  w.message(7, g);
  for (const o of m.opsetImports) w.message(8, new Writer().string(1, o.domain).int(2, o.version));
  for (const [k, v] of Object.entries(m.metadata)) w.message(14, new Writer().string(1, k).string(2, v));
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// reader
// ---------------------------------------------------------------------------------------------
class Corrupt extends Error {}
const utf8d = new TextDecoder();

type Field = { no: number; wire: number; int: number; bytes: Uint8Array };

/** A varint at buf[p] -> [value as a signed int64 in a JS number, next position]. */
function varint(buf: Uint8Array, p: number): [number, number] {
  let lo = 0, big = 0n, shift = 0;
  for (let i = 0; ; i++, shift += 7) {
    if (p >= buf.length) throw new Corrupt(`truncated varint at byte ${p}`);
    if (i >= 10) throw new Corrupt(`varint longer than 10 bytes at byte ${p}`);
    const b = buf[p++];
    if (shift < 28) lo |= (b & 127) << shift;
    else big |= BigInt(b & 127) << BigInt(shift);
    if (!(b & 128)) break;
  }
  return [shift < 28 ? lo : Number(BigInt.asIntN(64, big | BigInt(lo))), p];
}

/** All fields of one message, in order. */
function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let p = 0, key = 0, v = 0;
  while (p < buf.length) {
    [key, p] = varint(buf, p);
    const no = Math.floor(key / 8), wire = key & 7;
    if (no === 0) throw new Corrupt(`field number 0 at byte ${p}`);
    if (wire === 0) {
      [v, p] = varint(buf, p);
      out.push({ no, wire, int: v, bytes: new Uint8Array(0) });
      continue;
    }
    let len: number;
    if (wire === 2) [len, p] = varint(buf, p);
    else if (wire === 5 || wire === 1) len = wire === 5 ? 4 : 8;
    else throw new Corrupt(`unknown wire type ${wire} (field ${no}) at byte ${p}`);
    if (len < 0 || p + len > buf.length) throw new Corrupt(`field ${no} claims ${len} bytes but only ${buf.length - p} remain`);
    out.push({ no, wire, int: 0, bytes: buf.subarray(p, p + len) });
    p += len;
  }
  return out;
}

const f32 = (b: Uint8Array, o = 0) => new DataView(b.buffer, b.byteOffset + o, 4).getFloat32(0, true);
const one = (fs: Field[], no: number) => { let r: Field | undefined; for (const f of fs) if (f.no === no) r = f; return r; };
const str = (fs: Field[], no: number) => { const f = one(fs, no); return f ? utf8d.decode(f.bytes) : ''; };
const strs = (fs: Field[], no: number) => fs.filter((f) => f.no === no).map((f) => utf8d.decode(f.bytes));
const subs = (fs: Field[], no: number) => fs.filter((f) => f.no === no).map((f) => fields(f.bytes));
/** repeated int64: unpacked varints or packed runs */
function ints(fs: Field[], no: number): number[] {
  const out: number[] = [];
  for (const f of fs) {
    if (f.no !== no) continue;
    if (f.wire === 0) { out.push(f.int); continue; }
    for (let p = 0, v = 0; p < f.bytes.length;) { [v, p] = varint(f.bytes, p); out.push(v); }
  }
  return out;
}
function floats(fs: Field[], no: number): number[] {
  const out: number[] = [];
  for (const f of fs) if (f.no === no) for (let o = 0; o < f.bytes.length; o += 4) out.push(f32(f.bytes, o));
  return out;
}

function readTensor(fs: Field[]): TensorProto {
  const t: TensorProto = { name: str(fs, 8), dims: ints(fs, 1), dataType: one(fs, 2)?.int ?? 0, rawData: one(fs, 9)?.bytes ?? new Uint8Array(0) };
  if (!one(fs, 9) && fs.some((f) => [4, 5, 7].includes(f.no))) throw new Corrupt(`tensor ${t.name}: only raw_data is supported`);
  return t;
}

function readAttribute(fs: Field[]): AttributeProto {
  const a: AttributeProto = { name: str(fs, 1), type: one(fs, 20)?.int ?? 0 };
  const f = one(fs, 2), i = one(fs, 3), t = one(fs, 5);
  if (f) a.f = f32(f.bytes);
  if (i) a.i = i.int;
  if (one(fs, 4)) a.s = str(fs, 4);
  if (t) a.t = readTensor(fields(t.bytes));
  if (one(fs, 7)) a.floats = floats(fs, 7);
  if (one(fs, 8)) a.ints = ints(fs, 8);
  return a;
}

function readValueInfo(fs: Field[]): ValueInfoProto {
  const v: ValueInfoProto = { name: str(fs, 1), elemType: 0, dims: [] };
  const tensor = subs(fs, 2).map((type) => one(type, 1))[0]; // TypeProto.tensor_type
  if (tensor) {
    const tf = fields(tensor.bytes);
    v.elemType = one(tf, 1)?.int ?? 0;
    for (const shape of subs(tf, 2)) for (const d of subs(shape, 1)) v.dims.push(one(d, 1) ? one(d, 1)!.int : str(d, 2) || '?');
  }
  return v;
}

export function decodeModel(bytes: Uint8Array): ModelProto {
  const fs = fields(bytes);
  const graph = one(fs, 7);
  if (!graph) throw new Corrupt('no graph');
  const gf = fields(graph.bytes);
  const metadata: Record<string, string> = {};
  for (const kv of subs(fs, 14)) metadata[str(kv, 1)] = str(kv, 2);
  return {
    irVersion: one(fs, 1)?.int ?? 0, producerName: str(fs, 2), producerVersion: str(fs, 3), docString: str(fs, 6),
    opsetImports: subs(fs, 8).map((o) => ({ domain: str(o, 1), version: one(o, 2)?.int ?? 0 })),
    metadata,
    graph: {
      name: str(gf, 2),
      nodes: subs(gf, 1).map((nf) => ({
        inputs: strs(nf, 1), outputs: strs(nf, 2), name: str(nf, 3), opType: str(nf, 4), domain: str(nf, 7),
        attributes: subs(nf, 5).map(readAttribute),
      })),
      initializers: subs(gf, 5).map(readTensor),
      inputs: subs(gf, 11).map(readValueInfo),
      outputs: subs(gf, 12).map(readValueInfo),
    },
  };
}

/** Structural checks onnxruntime would otherwise report at length: returns the first problem. */
export function checkModel(m: ModelProto): string | null {
  if (m.irVersion < 3) return `ir_version ${m.irVersion} is missing or too old`;
  if (!m.opsetImports.some((o) => o.domain === '' || o.domain === 'ai.onnx')) return 'no opset_import for the default domain';
  const known = new Set<string>(['']);
  for (const v of m.graph.inputs) known.add(v.name);
  for (const t of m.graph.initializers) {
    const n = t.dims.reduce((a, b) => a * b, 1) * (ELEM_BYTES[t.dataType] ?? NaN);
    if (!(n === t.rawData.length)) return `initializer ${t.name}: ${t.rawData.length} bytes of data for dims [${t.dims}] (data type ${t.dataType})`;
    known.add(t.name);
  }
  for (const n of m.graph.nodes) {
    if (!n.opType) return `a node without op_type (${n.name || 'unnamed'})`;
    for (const i of n.inputs) if (!known.has(i)) return `node ${n.name || n.opType} reads ${i}, which nothing produces before it`;
    for (const o of n.outputs) known.add(o);
  }
  for (const o of m.graph.outputs) if (!known.has(o.name)) return `graph output ${o.name} is never produced`;
  if (!m.graph.outputs.length) return 'the graph has no outputs';
  return null;
}

/** Parse and check; any defect becomes one DriftlabError line naming `what`. */
export function readModel(bytes: Uint8Array, what: string): ModelProto {
  let m: ModelProto;
  try {
    m = decodeModel(bytes);
  } catch (e) {
    if (e instanceof Corrupt) throw new DriftlabError(`${what} is not a valid ONNX model (${e.message}); re-create it with 'driftlab export'`);
    throw e;
  }
  const bad = checkModel(m);
  if (bad) throw new DriftlabError(`${what} is not a usable ONNX model (${bad}); re-create it with 'driftlab export'`);
  return m;
}

/** float32 values as little-endian bytes (TensorProto.raw_data) */
export function f32Bytes(v: Float32Array): Uint8Array {
  const out = new Uint8Array(v.length * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < v.length; i++) dv.setFloat32(i * 4, v[i], true);
  return out;
}

export function i64Bytes(v: number[]): Uint8Array {
  const out = new Uint8Array(v.length * 8);
  const dv = new DataView(out.buffer);
  v.forEach((x, i) => dv.setBigInt64(i * 8, BigInt(x), true));
  return out;
}

export function bytesF32(b: Uint8Array): Float32Array {
  const out = new Float32Array(b.length / 4);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(i * 4, true);
  return out;
}
