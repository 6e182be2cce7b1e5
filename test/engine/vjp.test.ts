/**
 * Every VJP rule (engine/vjp.ts), emitted as ONNX by the training builder and run by
 * onnxruntime, against central finite differences of an independent float64 reference
 * (ref-ops.ts) on small shapes: L = sum(op(xs) * r) for a random cotangent r; the graph's dL/dx
 * must match (L(x + h e) - L(x - h e)) / 2h to 1e-4 relative by L2 norm. The forward values are
 * compared too (the reference must be the same function).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as layers from '../../src/diffusion/layers.js';
import { ONNX_IR_VERSION, ONNX_OPSET } from '../../src/engine/export.js';
import type { GVal } from '../../src/engine/onnx-ops.js';
import { ConvGradPolicy, DW_FORMULATIONS, DX_FORMULATIONS, convGradApplies } from '../../src/engine/onnx-conv-grad.js';
import { OnnxTrainBuilder } from '../../src/engine/onnx-train-ops.js';
import { encodeModel } from '../../src/engine/onnx-proto.js';
import type { Ops } from '../../src/engine/ops.js';
import { Tape } from '../../src/engine/tape.js';
import { loadOrt } from '../../src/engine/onnx-engine.js';
import { Rng } from '../../src/util/rng.js';
import { once, requireOrt } from './helpers.js';
import { R, refOps } from './ref-ops.js';

const ready = once(requireOrt);
type In = { shape: number[]; labels?: number; positive?: boolean };
type F = <T>(o: Ops<T>, xs: T[]) => T;

async function checkOp(inputs: In[], f: F, seed = 1, convGrad?: ConvGradPolicy): Promise<number> {
  await ready();
  const ort = (await loadOrt()).ort!;
  const rng = new Rng(seed);
  const vals = inputs.map((s) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (s.labels) return Float64Array.from({ length: n }, () => rng.int(s.labels!));
    return Float64Array.from(rng.normals(n), (v) => (s.positive ? 0.5 + v * v : v));
  });
  const ref = (vs: Float64Array[]) => f(refOps, vs.map((v, i) => new R(v, inputs[i].shape)));
  const y0 = ref(vals);
  const r = Float64Array.from(rng.normals(y0.d.length));
  // ONNX: forward + loss + gradients through the tape
  const g = new OnnxTrainBuilder();
  if (convGrad) g.convGrad = convGrad;
  const tape = new Tape<GVal>(g);
  const xs = inputs.map((s, i) => tape.leaf(g.input(`x${i}`, s.shape, s.labels ? 'int64' : 'float32'), !s.labels));
  const y = f(tape, xs);
  const n = y0.d.length;
  const loss = tape.mul(tape.mean(tape.reshape(tape.mul(y, tape.constant(Float32Array.from(r), y0.s)), [1, n]), 1), n);
  const wrt = xs.filter((_, i) => !inputs[i].labels);
  const grads = tape.gradients(loss, wrt);
  g.output(y.v, 'y');
  grads.forEach((gv, i) => g.output(gv, `g${i}`));
  const bytes = encodeModel({
    irVersion: ONNX_IR_VERSION, opsetImports: [{ domain: '', version: ONNX_OPSET }], producerName: 'test', producerVersion: '', docString: '',
    graph: g.graph('vjp'), metadata: {},
  });
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, logSeverityLevel: 3 });
  const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
  inputs.forEach((s, i) => {
    feeds[`x${i}`] = s.labels ? new ort.Tensor('int64', BigInt64Array.from(vals[i], (v) => BigInt(v)), s.shape) : new ort.Tensor('float32', Float32Array.from(vals[i]), s.shape);
  });
  const out = await session.run(feeds);
  await session.release();
  const fy = out.y.data as Float32Array;
  let fwd = 0;
  for (let k = 0; k < n; k++) fwd = Math.max(fwd, Math.abs(fy[k] - y0.d[k]));
  assert.ok(fwd < 1e-4 * (1 + Math.max(...Array.from(y0.d, Math.abs))), `forward differs from the reference by ${fwd}`);
  // central differences of L in float64
  const L = (vs: Float64Array[]) => { const yy = ref(vs); let s = 0; for (let k = 0; k < n; k++) s += yy.d[k] * r[k]; return s; };
  let worst = 0;
  let gi = 0;
  inputs.forEach((s, i) => {
    if (s.labels) return;
    const got = out[`g${gi++}`].data as Float32Array;
    const h = 1e-5;
    let dd = 0, rr = 0;
    for (let k = 0; k < vals[i].length; k++) {
      const v = vals[i][k];
      vals[i][k] = v + h; const up = L(vals);
      vals[i][k] = v - h; const dn = L(vals);
      vals[i][k] = v;
      const fd = (up - dn) / (2 * h);
      dd += (got[k] - fd) ** 2; rr += fd * fd;
    }
    assert.ok(rr > 0, `input ${i}: the finite-difference gradient is zero (a case that cannot fail)`);
    const rel = Math.sqrt(dd / rr);
    assert.ok(rel < 1e-4, `input ${i} [${s.shape}]: relative gradient error ${rel.toExponential(2)}`);
    worst = Math.max(worst, rel);
  });
  return worst;
}

const X = (shape: number[], o: Partial<In> = {}): In => ({ shape, ...o });

test('conv2d 3x3 stride 1 pad 1: d/dx (ConvTranspose), d/dw (swapped Conv), d/db', async () => {
  await checkOp([X([2, 5, 5, 3]), X([3, 3, 3, 4]), X([4])], (o, [x, w, b]) => o.conv2d(x, w, b, 1, 1));
});
test('conv2d 3x3 stride 2 pad 1, even and odd sizes (output_padding, weight-grad slice)', async () => {
  await checkOp([X([2, 6, 6, 2]), X([3, 3, 2, 3]), X([3])], (o, [x, w, b]) => o.conv2d(x, w, b, 2, 1));
  await checkOp([X([1, 7, 7, 2]), X([3, 3, 2, 3]), X([3])], (o, [x, w, b]) => o.conv2d(x, w, b, 2, 1));
});
test('every conv gradient formulation (dx: ConvTranspose, flipped Conv; dw: swapped Conv, im2col NHWC / NCHW + GEMM, per-tap products NCHW / CBHW / flat): stride 1 and 2, odd and even sizes, 1x1', async () => {
  const cases: { x: number[]; w: number[]; stride: number; pad: number }[] = [
    { x: [2, 5, 5, 3], w: [3, 3, 3, 4], stride: 1, pad: 1 },
    { x: [2, 5, 6, 6], w: [3, 3, 6, 2], stride: 1, pad: 1 }, // Cin >= 3 Cout: taps-flat shifts dy
    { x: [2, 5, 7, 1], w: [3, 3, 1, 2], stride: 1, pad: 1 }, // non-square, one input channel
    { x: [2, 6, 6, 2], w: [3, 3, 2, 3], stride: 2, pad: 1 },
    { x: [1, 7, 7, 2], w: [3, 3, 2, 3], stride: 2, pad: 1 },
    { x: [2, 4, 5, 3], w: [1, 1, 3, 2], stride: 1, pad: 0 },
  ];
  let checked = 0;
  for (const c of cases) {
    for (const dx of DX_FORMULATIONS) for (const dw of DW_FORMULATIONS) {
      const xShape = c.x, dyShape = [c.x[0], Math.floor((c.x[1] + 2 * c.pad - c.w[0]) / c.stride) + 1, Math.floor((c.x[2] + 2 * c.pad - c.w[1]) / c.stride) + 1, c.w[3]];
      if (!convGradApplies(dx, { kind: 'dx', xShape, wShape: c.w, dyShape, stride: c.stride, pad: c.pad })) continue;
      // the blocked-kernel formulation needs a block (test/engine/nchwc.test.ts); taps-flat is stride 1 only
      if (!convGradApplies(dw, { kind: 'dw', xShape, wShape: c.w, dyShape, stride: c.stride, pad: c.pad })) continue;
      const policy: ConvGradPolicy = (k) => (k.kind === 'dx' ? dx : dw);
      await checkOp([X(c.x), X(c.w), X([c.w[3]])], (o, [x, w, b]) => o.conv2d(x, w, b, c.stride, c.pad), 7, policy);
      checked++;
    }
  }
  // stride 1 (4 cases): both dx x every dw but swapped-nchwc; stride 2 (2 cases): ConvTranspose x those but taps-flat
  const dws = DW_FORMULATIONS.length - 1;
  assert.is(checked, 4 * 2 * dws + 2 * (dws - 1), 'flipped-conv and taps-flat run on the stride-1 cases only');
});
test('conv2d 1x1 pad 0', async () => {
  await checkOp([X([2, 4, 4, 3]), X([1, 1, 3, 2]), X([2])], (o, [x, w, b]) => o.conv2d(x, w, b, 1, 0));
});
test('conv2d after a layout change (input from a matMul, NHWC)', async () => {
  await checkOp([X([2, 4, 4, 3]), X([3, 3]), X([3, 3, 3, 2]), X([2])], (o, [x, m, w, b]) => o.conv2d(o.reshape(o.matMul(o.reshape(x, [-1, 3]), m), [2, 4, 4, 3]), w, b, 1, 1));
});
test('matMul: 2-D, batched, transposeB, broadcast batch', async () => {
  await checkOp([X([3, 4]), X([4, 5])], (o, [a, b]) => o.matMul(a, b));
  await checkOp([X([2, 3, 4]), X([2, 5, 4])], (o, [a, b]) => o.matMul(a, b, true));
  await checkOp([X([2, 2, 3, 4]), X([4, 5])], (o, [a, b]) => o.matMul(a, b));
  await checkOp([X([2, 3, 3]), X([3, 3])], (o, [a, b]) => o.matMul(a, b, true));
});
test('add / sub / mul with broadcasting, and with numbers', async () => {
  await checkOp([X([2, 3, 4]), X([4])], (o, [a, b]) => o.add(a, b));
  await checkOp([X([2, 3, 4]), X([2, 1, 4])], (o, [a, b]) => o.sub(a, b));
  await checkOp([X([2, 1, 4]), X([3, 1])], (o, [a, b]) => o.mul(a, b));
  await checkOp([X([2, 3])], (o, [a]) => o.mul(o.add(a, 0.7), -1.5));
  await checkOp([X([2, 3]), X([2, 3])], (o, [a, b]) => o.mul(a, o.sub(a, b))); // a used twice
});
test('sigmoid, sin, cos, square, rsqrt', async () => {
  await checkOp([X([3, 4])], (o, [a]) => o.sigmoid(a));
  await checkOp([X([3, 4])], (o, [a]) => layers.silu(a, o)); // the fused rule (Tape.silu), against finite differences
  await checkOp([X([3, 4])], (o, [a]) => o.sin(a));
  await checkOp([X([3, 4])], (o, [a]) => o.cos(a));
  await checkOp([X([3, 4])], (o, [a]) => o.square(a));
  await checkOp([X([3, 4], { positive: true })], (o, [a]) => o.rsqrt(a));
});
test('reshape, transpose (to a conv layout and back), concat', async () => {
  await checkOp([X([2, 3, 4, 2])], (o, [a]) => o.reshape(o.transpose(o.reshape(a, [2, 3, 8]), [0, 2, 1]), [-1, 6]));
  await checkOp([X([2, 3, 3, 2]), X([2, 3, 3, 3])], (o, [a, b]) => o.concat([a, b], 3));
  await checkOp([X([2, 3]), X([1, 3]), X([2, 3])], (o, [a, b, c]) => o.concat([a, b, c], 0));
});
test('slice: first, middle and last parts, whole axis, and after a conv (NCHW layout)', async () => {
  await checkOp([X([2, 5, 3])], (o, [a]) => o.slice(a, 1, 0, 2));
  await checkOp([X([2, 5, 3])], (o, [a]) => o.slice(a, 1, 1, 3));
  await checkOp([X([2, 5, 3])], (o, [a]) => o.slice(a, 2, 2, 1));
  await checkOp([X([2, 5, 3])], (o, [a]) => o.slice(a, 0, 0, 2));
  await checkOp([X([1, 3, 3, 2]), X([1, 1, 2, 4]), X([4])], (o, [a, w, b]) => o.slice(o.conv2d(a, w, b, 1, 0), 3, 1, 2));
  // two slices of one value (gradients add) and the slice+broadcast+concat of concat conditioning
  await checkOp([X([2, 4, 2, 2, 1])], (o, [x]) => {
    const ctx = o.reshape(o.transpose(o.slice(x, 1, 0, 2), [0, 2, 3, 1, 4]), [2, 1, 2, 2, 2]);
    return o.concat([o.slice(x, 1, 2, 2), o.broadcastTo(ctx, [-1, 2, -1, -1, -1])], 4);
  });
});
test('softmax, mean (kept and dropped axis), broadcastTo', async () => {
  await checkOp([X([2, 3, 5])], (o, [a]) => o.softmax(a));
  await checkOp([X([2, 3, 4])], (o, [a]) => o.mean(a, 1, true));
  await checkOp([X([2, 3, 4])], (o, [a]) => o.mean(a, 2));
  await checkOp([X([2, 1, 4])], (o, [a]) => o.broadcastTo(a, [-1, 3, -1]));
});
test('resizeNearest2x (plain and after a conv: NCHW layout)', async () => {
  await checkOp([X([2, 3, 2, 3])], (o, [a]) => o.resizeNearest2x(a));
  await checkOp([X([1, 3, 3, 2]), X([1, 1, 2, 2]), X([2])], (o, [a, w, b]) => o.resizeNearest2x(o.conv2d(a, w, b, 1, 0)));
});
test('embedding (gather): gradient scatters into the table rows; repeated labels add', async () => {
  await checkOp([X([5, 3]), X([6], { labels: 5 })], (o, [t, l]) => o.embedding(t, l, 6), 4);
});
test('composites: GroupNorm and SiLU from diffusion/layers.ts', async () => {
  // the tape records GroupNorm as one op with a closed-form VJP; the reference composes it
  await checkOp([X([2, 3, 3, 4]), X([4]), X([4])], (o, [x, w, b]) => layers.groupNorm(new Map([['n.weight', w], ['n.bias', b]]), 'n', x, 2, 1e-5, o));
  await checkOp([X([3, 5, 3, 6]), X([6]), X([6])], (o, [x, w, b]) => layers.groupNorm(new Map([['n.weight', w], ['n.bias', b]]), 'n', x, 3, 1e-5, o), 5);
  // after a conv (NCHW layout), followed by SiLU, as in a ResBlock
  await checkOp([X([2, 5, 5, 3]), X([3, 3, 3, 4]), X([4]), X([4]), X([4])], (o, [x, k, kb, w, b]) =>
    layers.silu(layers.groupNorm(new Map([['n.weight', w], ['n.bias', b]]), 'n', o.conv2d(x, k, kb, 1, 1), 2, 1e-5, o), o), 6);
  await checkOp([X([2, 3])], (o, [x]) => layers.silu(x, o));
});

test('a tape records only what needs a gradient; unused leaves get zeros', async () => {
  await ready();
  const g = new OnnxTrainBuilder();
  const tape = new Tape<GVal>(g);
  const a = tape.leaf(g.input('a', [2]), true), b = tape.leaf(g.input('b', [2]), true), c = tape.leaf(g.input('c', [2]), false);
  const loss = tape.mean(tape.mul(tape.sin(c), a), 0);
  assert.is(tape.size, 2); // mul, mean (sin(c) needs no gradient)
  const [, gb] = tape.gradients(loss, [a, b]) as GVal[];
  assert.ok(gb.data && gb.data.every((v) => v === 0), 'the unused leaf b gets a zero constant');
});

test.run();
