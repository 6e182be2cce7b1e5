/**
 * Ops that build an ONNX graph (opset 17) instead of computing: running the generic U-Net forward
 * with these records it as nodes. Parameters become initializers (float32, raw little-endian).
 *
 * Layout. The model is written NHWC; ONNX Conv wants NCHW. Rather than a Transpose pair around
 * every Conv, each value carries a permutation: physical axis i of the ONNX tensor holds logical
 * axis perm[i]. Convs leave their output NCHW (perm [0,3,1,2]); element-wise ops, reductions,
 * Concat, Softmax and Resize work in whatever layout their input has; Reshape keeps it when the
 * merged/split axes are contiguous in memory (the GroupNorm reshapes are); logical transposes are
 * free. A Transpose node is emitted only where a layout must change (MatMul inputs, the output).
 * Constants are laid out at export time in the layout their consumer needs (OIHW conv weights,
 * [C,1,1]-shaped biases) and written only if some node uses them.
 *
 * Shapes: -k in a dimension means k x batch (the batch size is a graph input dimension).
 */
import { DriftlabError } from '../util/errors.js';
import type { Ops } from './ops.js';
import { AttrType, AttributeProto, DataType, GraphProto, NodeProto, TensorProto, ValueInfoProto, f32Bytes, i64Bytes } from './onnx-proto.js';

export interface GVal {
  /** ONNX value (or initializer) name */
  readonly id: string;
  /** logical shape; -k = k x batch */
  readonly shape: number[];
  /** physical axis i holds logical axis perm[i] */
  readonly perm: number[];
  readonly dtype: 'float32' | 'int64';
  /** constants: logical row-major values, laid out when a node first uses them */
  readonly data?: Float32Array;
  /**
   * broadcastTo results: the value before the Expand (same rank, size-1 axes). Element-wise ops
   * whose other operand already has the full shape read this instead and broadcast it themselves,
   * so the Expand (and, unused, its node: graph() drops dead nodes) and a Transpose of the full
   * tensor into the small value's layout are not computed.
   */
  readonly expandOf?: GVal;
}

export function unsupported(op: string, why: string): never {
  throw new DriftlabError(`cannot export to ONNX: op '${op}' ${why}`);
}

const iota = (n: number) => [...Array(n).keys()];
const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
/** batch-symbolic size as (k, b): k x batch^b */
const sym = (dims: number[]) => dims.reduce(([k, b], d) => [k * Math.abs(d), b + (d < 0 ? 1 : 0)], [1, 0]);
const est = (v: GVal) => v.shape.reduce((a, d) => a * (d < 0 ? 64 * -d : d), 1);

/** Reorder row-major data of `shape` so that axis i of the result is axis perm[i] of the input. */
export function permuteData(data: Float32Array, shape: number[], perm: number[]): Float32Array {
  if (same(perm, iota(perm.length))) return data;
  const out = new Float32Array(data.length);
  const outShape = perm.map((a) => shape[a]);
  const inStride = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const idx = new Array(perm.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let i = 0; i < perm.length; i++) src += idx[i] * inStride[perm[i]];
    out[o] = data[src];
    for (let i = perm.length - 1; i >= 0 && ++idx[i] === outShape[i]; i--) idx[i] = 0;
  }
  return out;
}

export class OnnxGraphBuilder implements Ops<GVal> {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  /**
   * Prefix of the node names emitted now ('' = none): training graphs name the part of the step
   * a node belongs to (fwd/, bwd/, opt/, bwd/dw/...) so that profiles can attribute time to it.
   */
  scope = '';
  private n = 0;
  private uid = 0;
  private scalars = new Map<number, GVal>();
  private laidOut = new Map<string, string>(); // "id|perm" -> name of a value in that layout
  private names = new Set<string>();

  // ---- graph plumbing ----------------------------------------------------------------------
  input(name: string, shape: number[], dtype: 'float32' | 'int64' = 'float32'): GVal {
    this.inputs.push({ name, elemType: dtype === 'float32' ? DataType.FLOAT : DataType.INT64, dims: shape.map((d) => (d < 0 ? 'batch' : d)) });
    this.names.add(name);
    return { id: name, shape, perm: iota(shape.length), dtype };
  }

  /** A named constant (a trained parameter): an initializer once some node uses it. */
  param(name: string, shape: number[], data: Float32Array): GVal {
    if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`param ${name}: ${data.length} values for shape [${shape}]`);
    return { id: name, shape, perm: iota(shape.length), dtype: 'float32', data };
  }

  /** Mark v as a graph output (NHWC, identity layout). */
  output(v: GVal, name: string): void {
    const src = this.as(v, iota(v.shape.length));
    this.node('Identity', [src], [], name);
    this.outputs.push({ name, elemType: DataType.FLOAT, dims: v.shape.map((d) => (d < 0 ? 'batch' : d)) });
  }

  /** fn() with node names prefixed by scope/ (nested under the current scope) */
  within<R>(scope: string, fn: () => R): R {
    const prev = this.scope;
    this.scope = prev ? `${prev}/${scope}` : scope;
    try { return fn(); } finally { this.scope = prev; }
  }

  /** The graph, without nodes whose outputs nothing reads (nor initializers only they read). */
  graph(name: string): GraphProto {
    const read = new Set(this.outputs.map((o) => o.name));
    const live: NodeProto[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i];
      if (!n.outputs.some((o) => read.has(o))) continue;
      live.push(n);
      for (const x of n.inputs) read.add(x);
    }
    live.reverse();
    return { name, nodes: live, initializers: this.initializers.filter((t) => read.has(t.name)), inputs: this.inputs, outputs: this.outputs };
  }

  protected fresh(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}:${i}`;
    this.names.add(name);
    return name;
  }

  protected node(op: string, inputs: string[], attrs: AttributeProto[] = [], out?: string, domain = ''): string {
    const o = out ?? this.fresh(`${op.toLowerCase()}${this.n}`);
    if (out) this.names.add(out);
    this.nodes.push({ name: `${this.scope ? `${this.scope}/` : ''}${op}_${this.n++}`, opType: op, domain, inputs, outputs: [o], attributes: attrs });
    return o;
  }

  protected initializer(base: string, dims: number[], raw: Uint8Array, dataType: number): string {
    const name = this.fresh(base);
    this.initializers.push({ name, dims, dataType, rawData: raw });
    return name;
  }

  /** an int64 vector constant (Reshape / Expand shapes), shared between nodes */
  protected i64(values: number[]): string {
    const key = `i64|${values}`;
    let name = this.laidOut.get(key);
    if (!name) this.laidOut.set(key, (name = this.initializer('shape', [values.length], i64Bytes(values), DataType.INT64)));
    return name;
  }

  protected val(id: string, shape: number[], perm: number[], dtype: 'float32' | 'int64' = 'float32'): GVal {
    return { id, shape, perm, dtype };
  }

  /** Name of v laid out with the given permutation (a Transpose, or constant data reordered). */
  protected as(v: GVal, perm: number[]): string {
    const key = `${v.id}|${v.perm}|${perm}`; // the same id may be seen through different perms (logical transposes)
    const hit = this.laidOut.get(key);
    if (hit) return hit;
    let name: string;
    if (v.data) {
      const dims = perm.map((a) => v.shape[a]);
      name = this.initializer(v.id, dims, f32Bytes(permuteData(v.data, v.shape, perm)), DataType.FLOAT);
    } else if (same(v.perm, perm)) return v.id;
    else name = this.node('Transpose', [v.id], [ints('perm', perm.map((a) => v.perm.indexOf(a)))]);
    this.laidOut.set(key, name);
    return name;
  }

  // ---- Ops ---------------------------------------------------------------------------------
  shape(x: GVal): number[] { return x.shape; }

  constant(values: Float32Array, shape: number[]): GVal {
    return this.param(`const_${this.uid++}`, shape, values);
  }

  conv2d(x: GVal, w: GVal, b: GVal, stride: number, pad: number): GVal {
    const [, H, W] = x.shape;
    const [kh, kw, , cout] = w.shape;
    if (x.shape.length !== 4 || w.shape.length !== 4) unsupported('conv2d', `needs 4-D input and weights, got [${x.shape}] and [${w.shape}]`);
    if (!Number.isInteger(pad) || !Number.isInteger(stride) || stride < 1) unsupported('conv2d', `with stride ${stride} and padding ${pad} (kernel ${kh}x${kw})`);
    const y = this.node('Conv', [this.as(x, NCHW), this.as(w, [3, 2, 0, 1]), this.as(b, [0])], [
      ints('kernel_shape', [kh, kw]), ints('pads', [pad, pad, pad, pad]), ints('strides', [stride, stride]),
    ]);
    const out = (n: number, k: number) => Math.floor((n + 2 * pad - k) / stride) + 1;
    return this.val(y, [x.shape[0], out(H, kh), out(W, kw), cout], NCHW);
  }

  matMul(a: GVal, b: GVal, transposeB = false): GVal {
    const r = b.shape.length;
    const bb = transposeB ? this.transpose(b, [...iota(r - 2), r - 1, r - 2]) : b;
    if (a.shape.length < 2 || r < 2) unsupported('matMul', `on [${a.shape}] x [${b.shape}]`);
    const y = this.node('MatMul', [this.as(a, iota(a.shape.length)), this.as(bb, iota(r))]);
    const batch = a.shape.length >= r ? a.shape.slice(0, -2) : bb.shape.slice(0, -2);
    const shape = [...batch, a.shape[a.shape.length - 2], bb.shape[r - 1]];
    return this.val(y, shape, iota(shape.length));
  }

  add(a: GVal, b: GVal | number): GVal { return this.binary('Add', a, b); }
  sub(a: GVal, b: GVal): GVal { return this.binary('Sub', a, b); }
  mul(a: GVal, b: GVal | number): GVal { return this.binary('Mul', a, b); }
  sigmoid(x: GVal): GVal { return this.unary('Sigmoid', x); }
  sin(x: GVal): GVal { return this.unary('Sin', x); }
  cos(x: GVal): GVal { return this.unary('Cos', x); }
  square(x: GVal): GVal { return this.binary('Mul', x, x); }
  rsqrt(x: GVal): GVal { return this.unary('Reciprocal', this.unary('Sqrt', x)); }

  reshape(x: GVal, target: number[]): GVal {
    const shape = this.resolveShape(x, target);
    if (x.data) return { ...x, id: `${x.id}_${this.uid++}`, shape, perm: iota(shape.length) };
    const perm = same(x.perm, iota(x.perm.length)) ? iota(shape.length) : keptLayout(x, shape);
    const src = perm ? x.id : this.as(x, iota(x.shape.length));
    const p = perm ?? iota(shape.length);
    const y = this.node('Reshape', [src, this.i64(p.map((a) => (shape[a] < 0 ? -1 : shape[a])))]);
    return this.val(y, shape, p);
  }

  transpose(x: GVal, perm: number[]): GVal {
    const shape = perm.map((a) => x.shape[a]);
    if (x.data) return { ...x, id: `${x.id}_${this.uid++}`, shape, data: permuteData(x.data, x.shape, perm), perm: iota(shape.length) };
    const inv = iota(perm.length).map((i) => perm.indexOf(i));
    return { ...x, shape, perm: x.perm.map((a) => inv[a]), expandOf: undefined }; // no node: only the bookkeeping changes
  }

  concat(xs: GVal[], axis: number): GVal {
    const lead = xs.reduce((p, q) => (!q.data && est(q) > est(p) ? q : p));
    const perm = lead.data ? iota(lead.shape.length) : lead.perm;
    const y = this.node('Concat', xs.map((v) => this.as(v, perm)), [int('axis', perm.indexOf(axis))]);
    const shape = [...lead.shape];
    shape[axis] = xs.reduce((s, v) => s + v.shape[axis], 0);
    return this.val(y, shape, perm);
  }

  slice(x: GVal, axis: number, begin: number, size: number): GVal {
    if (x.shape[axis] < 0) unsupported('slice', 'along the batch axis');
    if (!(begin >= 0 && size >= 1 && begin + size <= x.shape[axis])) unsupported('slice', `[${begin}, ${begin + size}) of an axis of ${x.shape[axis]}`);
    const y = this.node('Slice', [this.as(x, x.perm), this.i64([begin]), this.i64([begin + size]), this.i64([x.perm.indexOf(axis)])]);
    const shape = [...x.shape];
    shape[axis] = size;
    return this.val(y, shape, x.perm);
  }

  softmax(x: GVal): GVal {
    const y = this.node('Softmax', [this.as(x, x.perm)], [int('axis', x.perm.indexOf(x.shape.length - 1))]);
    return this.val(y, x.shape, x.perm);
  }

  mean(x: GVal, axis: number, keepDims = false): GVal {
    const y = this.node('ReduceMean', [this.as(x, x.perm)], [ints('axes', [x.perm.indexOf(axis)]), int('keepdims', keepDims ? 1 : 0)]);
    if (keepDims) return this.val(y, x.shape.map((d, i) => (i === axis ? 1 : d)), x.perm);
    return this.val(y, x.shape.filter((_, i) => i !== axis), x.perm.filter((a) => a !== axis).map((a) => (a > axis ? a - 1 : a)));
  }

  broadcastTo(x: GVal, shape: number[]): GVal {
    if (shape.length !== x.shape.length) unsupported('broadcastTo', `from rank ${x.shape.length} to rank ${shape.length}`);
    const target = shape.map((d, i) => (d === -1 ? x.shape[i] : d));
    const y = this.node('Expand', [this.as(x, x.perm), this.i64(x.perm.map((a) => (shape[a] === -1 ? 1 : shape[a])))]);
    return { ...this.val(y, target, x.perm), expandOf: x };
  }

  resizeNearest2x(x: GVal): GVal {
    if (x.shape.length !== 4) unsupported('resizeNearest2x', `on a rank-${x.shape.length} tensor`);
    const scales = this.initializer('scales', [4], f32Bytes(Float32Array.from(x.perm, (a) => (a === 1 || a === 2 ? 2 : 1))), DataType.FLOAT);
    const y = this.node('Resize', [this.as(x, x.perm), '', scales], [
      str('mode', 'nearest'), str('coordinate_transformation_mode', 'asymmetric'), str('nearest_mode', 'floor'),
    ]);
    const [B, H, W, C] = x.shape;
    return this.val(y, [B, 2 * H, 2 * W, C], x.perm);
  }

  embedding(table: GVal, labels: GVal | undefined, _batch: number): GVal {
    if (!labels) unsupported('embedding', "without a labels input (a conditional model's graph takes 'labels' [batch] int64)");
    const y = this.node('Gather', [this.as(table, [0, 1]), labels.id], [int('axis', 0)]);
    return this.val(y, [labels.shape[0], table.shape[1]], [0, 1]);
  }

  // ---- helpers -----------------------------------------------------------------------------
  private unary(op: string, x: GVal): GVal {
    return this.val(this.node(op, [this.as(x, x.perm)]), x.shape, x.perm);
  }

  /** element-wise op with numpy broadcasting; runs in the layout of the larger computed operand */
  private binary(op: string, aIn: GVal, bIn: GVal | number): GVal {
    let a = aIn, b = typeof bIn === 'number' ? this.scalar(bIn) : bIn;
    const R = Math.max(a.shape.length, b.shape.length);
    const pad = (v: GVal) => [...Array(R - v.shape.length).fill(1), ...v.shape];
    const bcast = (p: GVal, q: GVal) => {
      const [sp, sq] = [pad(p), pad(q)];
      return sp.map((d, i) => {
        if (d === sq[i] || sq[i] === 1) return d;
        if (d === 1) return sq[i];
        return unsupported(op.toLowerCase(), `cannot broadcast [${p.shape}] with [${q.shape}]`);
      });
    };
    const shape = bcast(a, b);
    // an operand that is only an Expand: broadcast its source instead, when the result stays the same
    if (a.expandOf && same(bcast(a.expandOf, b), shape)) a = a.expandOf;
    else if (b.expandOf && same(bcast(a, b.expandOf), shape)) b = b.expandOf;
    const lead = [a, b].filter((v) => !v.data && v.shape.length === R).sort((p, q) => est(q) - est(p))[0];
    const perm = lead ? lead.perm : iota(R);
    const operand = (v: GVal): string => {
      if (v.data && v.shape.length === 0) return this.as(v, []);
      if (v.data) return this.as({ ...v, shape: pad(v) }, perm);
      if (v.shape.length < R) return this.as(this.reshape(v, pad(v)), perm);
      return this.as(v, perm);
    };
    return this.val(this.node(op, [operand(a), operand(b)]), shape, perm);
  }

  private scalar(v: number): GVal {
    let c = this.scalars.get(v);
    if (!c) this.scalars.set(v, (c = this.param(`scalar_${this.uid++}`, [], Float32Array.of(v))));
    return c;
  }

  private resolveShape(x: GVal, target: number[]): number[] {
    const [k, b] = sym(x.shape);
    const free = target.filter((d) => d < 0).length;
    if (free > 1) unsupported('reshape', `with more than one inferred dimension ([${target}])`);
    const [kk, bb] = sym(target.filter((d) => d >= 0));
    if (bb > 0 || b > 1) unsupported('reshape', `of [${x.shape}] to [${target}]`);
    // The batch axis may be split (video: [B*F,H,W,C] -> [B,F,H*W,C]): its multiple is then a
    // fraction (-1/F x batch); ONNX only ever sees -1 there.
    // rounded so that the same fraction reached by two routes (1/5 and 160/800) compares equal
    const canon = (v: number) => (Number.isInteger(v) || Math.abs(1 / v - Math.round(1 / v)) > 1e-6 ? v : 1 / Math.round(1 / v));
    const shape = target.map((d) => (d < 0 ? (b ? -canon(k / kk) : k / kk) : d));
    const [k2, b2] = sym(shape);
    const fixedOk = shape.every((d) => d < 0 || Number.isInteger(d));
    if (Math.abs(k2 - k) > 1e-9 * k || b2 !== b || !fixedOk || (!b && !Number.isInteger(shape[target.findIndex((d) => d < 0)] ?? 0))) {
      unsupported('reshape', `of [${x.shape}] to [${target}]`);
    }
    return shape;
  }
}

/**
 * The layout x's memory already gives `shape`, if any: the reshape only merges or splits axes
 * that are contiguous (and in order) in memory. Returns the new perm, or null.
 */
function keptLayout(x: GVal, shape: number[]): number[] | null {
  const S = x.shape, size = (d: number) => (d < 0 ? 2 ** 20 * -d : d);
  const sAx = iota(S.length).filter((a) => S[a] !== 1), nAx = iota(shape.length).filter((a) => shape[a] !== 1);
  const groups: { s: number[]; n: number[] }[] = [];
  let i = 0, j = 0;
  while (i < sAx.length && j < nAx.length) {
    const g = { s: [sAx[i++]], n: [nAx[j++]] };
    let ps = size(S[g.s[0]]), pn = size(shape[g.n[0]]);
    while (ps !== pn) {
      if (ps < pn && i < sAx.length) { g.s.push(sAx[i]); ps *= size(S[sAx[i++]]); }
      else if (pn < ps && j < nAx.length) { g.n.push(nAx[j]); pn *= size(shape[nAx[j++]]); }
      else return null;
    }
    groups.push(g);
  }
  if (i < sAx.length || j < nAx.length) return null;
  const phys = x.perm.filter((a) => S[a] !== 1); // memory order of the non-unit logical axes
  const start = (g: { s: number[] }) => phys.indexOf(g.s[0]);
  for (const g of groups) if (!g.s.every((a, q) => phys[start(g) + q] === a)) return null;
  const order = [...groups].sort((p, q) => start(p) - start(q)).flatMap((g) => g.n);
  for (let a = 0; a < shape.length; a++) if (shape[a] === 1) order.splice(a === 0 ? 0 : order.indexOf(a - 1) + 1, 0, a);
  return order;
}

/** attribute helpers, shared with the training builders (onnx-conv-grad.ts, onnx-train-ops.ts) */
export const int = (name: string, i: number): AttributeProto => ({ name, type: AttrType.INT, i });
export const ints = (name: string, v: number[]): AttributeProto => ({ name, type: AttrType.INTS, ints: v });
/** the NCHW layout of a logical NHWC value (a GVal perm) */
export const NCHW = [0, 3, 1, 2];
const str = (name: string, s: string): AttributeProto => ({ name, type: AttrType.STRING, s });
