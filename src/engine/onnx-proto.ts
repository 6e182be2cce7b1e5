/**
 * ONNX ModelProto in and out: a writer (protobufjs) for the subset of onnx.proto driftlab emits,
 * and a hand-written reader strict enough to validate (and inspect) such files before they reach
 * onnxruntime, with one-line errors naming the defect. Field numbers are those of onnx/onnx.proto
 * (IR version 8, opset 17).
 *
 * Wire format: each field is a varint key (field << 3 | wire type) followed by a varint (type 0),
 * 8 bytes (1), a varint length and that many bytes (2: strings, bytes, sub-messages), or 4 bytes
 * (5). Repeated scalars may be packed (one length-delimited run); the reader accepts both forms.
 */
import protobuf from 'protobufjs';
import { DriftlabError } from '../util/errors.js';

/** TensorProto.DataType values driftlab uses */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7 } as const;
const ELEM_BYTES: Record<number, number> = { 1: 4, 2: 1, 3: 1, 6: 4, 7: 8 };

/** onnxruntime's operator domain of its blocked-layout (NCHWc) CPU kernels (contrib ops) */
export const NCHWC_DOMAIN = 'com.microsoft.nchwc';

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
// writer: protobufjs, on the subset of onnx.proto below. It replaced a hand-written writer
// because it is faster on driftlab's own exports and writes the same bytes: for the mnist-small
// U-Net (637 nodes, 3.4 MB) 0.36-0.66x the time of the hand-written one, byte-identical output
// (bench/bench-encoders.ts, docs/BENCHMARKS.md "Encoders"). proto2 as in onnx.proto, so
// repeated scalars stay unpacked; fields are written in field-number order.
// ---------------------------------------------------------------------------------------------
export const ONNX_SUBSET_PROTO = `
syntax = "proto2";
package onnx;
message AttributeProto { optional string name = 1; optional float f = 2; optional int64 i = 3; optional bytes s = 4; optional TensorProto t = 5; repeated float floats = 7; repeated int64 ints = 8; optional int32 type = 20; }
message ValueInfoProto { optional string name = 1; optional TypeProto type = 2; }
message NodeProto { repeated string input = 1; repeated string output = 2; optional string name = 3; optional string op_type = 4; repeated AttributeProto attribute = 5; optional string domain = 7; }
message ModelProto { optional int64 ir_version = 1; optional string producer_name = 2; optional string producer_version = 3; optional string doc_string = 6; optional GraphProto graph = 7; repeated OperatorSetIdProto opset_import = 8; repeated StringStringEntryProto metadata_props = 14; }
message StringStringEntryProto { optional string key = 1; optional string value = 2; }
message GraphProto { repeated NodeProto node = 1; optional string name = 2; repeated TensorProto initializer = 5; repeated ValueInfoProto input = 11; repeated ValueInfoProto output = 12; }
message TensorProto { repeated int64 dims = 1; optional int32 data_type = 2; optional string name = 8; optional bytes raw_data = 9; }
message TensorShapeProto { message Dimension { optional int64 dim_value = 1; optional string dim_param = 2; } repeated Dimension dim = 1; }
message TypeProto { message Tensor { optional int32 elem_type = 1; optional TensorShapeProto shape = 2; } optional Tensor tensor_type = 1; }
message OperatorSetIdProto { optional string domain = 1; optional int64 version = 2; }
`;

let modelType: protobuf.Type | null = null;
const utf8 = new TextEncoder();

const tensorMsg = (t: TensorProto) => ({ dims: t.dims, dataType: t.dataType, name: t.name, rawData: t.rawData });
const valueInfoMsg = (v: ValueInfoProto) => ({
  name: v.name,
  type: { tensorType: { elemType: v.elemType, shape: { dim: v.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
});
function attributeMsg(a: AttributeProto): Record<string, unknown> {
  const o: Record<string, unknown> = { name: a.name, type: a.type };
  if (a.f !== undefined) o.f = a.f;
  if (a.i !== undefined) o.i = a.i;
  if (a.s !== undefined) o.s = utf8.encode(a.s);
  if (a.t !== undefined) o.t = tensorMsg(a.t);
  if (a.floats) o.floats = a.floats;
  if (a.ints) o.ints = a.ints;
  return o;
}

/** driftlab's ModelProto -> the message object protobufjs encodes (empty domain and doc string omitted). */
function modelMsg(m: ModelProto): Record<string, unknown> {
  const out: Record<string, unknown> = {
    irVersion: m.irVersion, producerName: m.producerName, producerVersion: m.producerVersion,
    graph: {
      node: m.graph.nodes.map((n) => ({ input: n.inputs, output: n.outputs, name: n.name, opType: n.opType, attribute: n.attributes.map(attributeMsg), ...(n.domain ? { domain: n.domain } : {}) })),
      name: m.graph.name,
      initializer: m.graph.initializers.map(tensorMsg),
      input: m.graph.inputs.map(valueInfoMsg),
      output: m.graph.outputs.map(valueInfoMsg),
    },
    opsetImport: m.opsetImports.map((o) => ({ domain: o.domain, version: o.version })),
    metadataProps: Object.entries(m.metadata).map(([key, value]) => ({ key, value })),
  };
  if (m.docString) out.docString = m.docString;
  return out;
}

export function encodeModel(m: ModelProto): Uint8Array {
  modelType ??= protobuf.parse(ONNX_SUBSET_PROTO).root.lookupType('onnx.ModelProto');
  const b = modelType.encode(modelMsg(m)).finish();
  // protobufjs hands back a Buffer on Node, possibly a slice of its shared pool: return a plain
  // Uint8Array that owns its memory (as the reader and the rest of driftlab expect)
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? new Uint8Array(b.buffer, 0, b.byteLength) : new Uint8Array(b);
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
