/**
 * The hand-written ONNX protobuf writer that src/engine/onnx-proto.ts used before protobufjs
 * replaced it (issue #16 item 3), kept here only so bench-encoders.ts can repeat the comparison.
 * Not used by driftlab itself.
 */
import type { AttributeProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../src/engine/onnx-proto.js';

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

export function encodeModelHandWritten(m: ModelProto): Uint8Array {
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
