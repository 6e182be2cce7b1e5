/**
 * Issue #14: int8 accuracy must not depend on the CPU. On x86 without VNNI, onnxruntime's u8s8
 * kernels (AVX2 and AVX-512BW vpmaddubsw) add each pair of uint8 x int8 products into a
 * saturating int16 before summing in int32. These tests
 *   - emulate that instruction in JS (a closed form, checked on hand-worked cases) and apply it
 *     to the integers the export writes: every weight an integer kernel reads is bounded so that
 *     no uint8 input can saturate any pair (255 * (two largest |q| of a column) <= 32767), while
 *     the old full-range weights do saturate; this runs the same on every machine;
 *   - run the worst case in onnxruntime (activations quantized to 0 and 255, weights at the ends
 *     of their range, where the quantization itself is exact): the default scheme matches a float64
 *     recomputation to float rounding on every CPU (full-range errs by ~50% on AVX2-only CPUs;
 *     scripts/cpu-mask/run.sh avx2 reproduces that on a VNNI machine);
 *   - check the one line that names the scheme and the CPU's int8 kernels.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getPreset } from '../../src/diffusion/presets.js';
import { DEFAULT_SCHEDULE } from '../../src/diffusion/schedule.js';
import { exportOnnx } from '../../src/engine/export.js';
import { cpuInt8, int8Line } from '../../src/engine/int8-scheme.js';
import { loadOrt } from '../../src/engine/onnx-engine.js';
import { AttrType, DataType, ModelProto, NodeProto, decodeModel, encodeModel, f32Bytes } from '../../src/engine/onnx-proto.js';
import { QUANT_META_KEY, QuantizeOptions, calibrate, mnistCalibration, quantizeModel } from '../../src/engine/quantize.js';
import { Rng } from '../../src/util/rng.js';
import { throwsDriftlab } from '../helpers/backend.js';
import { once, randomParams, requireOrt } from './helpers.js';

const INT16_MAX = 32767, INT16_MIN = -32768;

/** AVX2 without VNNI: vpmaddubsw (pairs of u8 x s8 products, saturated to int16), then vpmaddwd by 1 (int32 sums) */
function avx2Dot(a: ArrayLike<number>, w: ArrayLike<number>): number {
  let acc = 0;
  for (let k = 0; k < a.length; k += 2) {
    const pair = a[k] * w[k] + (k + 1 < a.length ? a[k + 1] * w[k + 1] : 0);
    acc += Math.max(INT16_MIN, Math.min(INT16_MAX, pair));
  }
  return acc;
}
const exactDot = (a: ArrayLike<number>, w: ArrayLike<number>) => { let s = 0; for (let k = 0; k < a.length; k++) s += a[k] * w[k]; return s; };

test('the vpmaddubsw emulation: hand-worked pairs', () => {
  assert.is(exactDot([255, 255], [127, 127]), 64770);
  assert.is(avx2Dot([255, 255], [127, 127]), 32767, '2 * 255 * 127 saturates to int16 max');
  assert.is(avx2Dot([255, 255], [-127, -127]), -32768);
  assert.is(avx2Dot([255, 255], [63, 63]), 32130, '2 * 255 * 63 fits');
  assert.is(avx2Dot([255, 255, 255, 255], [127, 127, -127, 1]), 32767 + 255 * -126, 'pairs saturate one by one, then add in int32');
  assert.is(avx2Dot([255, 0, 255], [127, 127, 127]), 2 * 255 * 127, 'no saturation when a pair holds one large product');
});

/** The int8 weights of the graph that an integer kernel reads, cut into the vectors one output is a dot product with. */
function integerKernelWeights(m: ModelProto): { weightOnly: Int8Array[]; integer: Int8Array[]; nodes: number } {
  const inits = new Map(m.graph.initializers.map((t) => [t.name, t]));
  const producer = new Map<string, NodeProto>(m.graph.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as [string, NodeProto])));
  const int8 = (name?: string) => { const t = name ? inits.get(name) : undefined; return t?.dataType === DataType.INT8 ? t : undefined; };
  const integer: Int8Array[] = [], weightOnly: Int8Array[] = [];
  let nodes = 0;
  for (const n of m.graph.nodes) {
    const dq = (i: number) => (producer.get(n.inputs[i])?.opType === 'DequantizeLinear' ? producer.get(n.inputs[i]) : undefined);
    let w = ['MatMulInteger', 'ConvInteger'].includes(n.opType) ? int8(n.inputs[1]) : undefined;
    const convW = n.opType === 'Conv' ? int8(dq(1)?.inputs[0]) : undefined;
    if (convW && !dq(0)) { // DQ(int8 W) -> float Conv: a weight-only Conv, no integer kernel
      const q = new Int8Array(convW.rawData.buffer, convW.rawData.byteOffset, convW.rawData.length), per = q.length / convW.dims[0];
      for (let c = 0; c < convW.dims[0]; c++) weightOnly.push(q.slice(c * per, (c + 1) * per));
      continue;
    }
    w ??= convW; // DQ(x) -> Conv(DQ(W)) -> Q: fused into QLinearConv
    if (!w) continue;
    nodes++;
    const q = new Int8Array(w.rawData.buffer, w.rawData.byteOffset, w.rawData.length);
    if (n.opType === 'MatMulInteger') { // [K, N]: column j
      const [K, N] = w.dims;
      for (let j = 0; j < N; j++) integer.push(Int8Array.from({ length: K }, (_, k) => q[k * N + j]));
    } else { // [Cout, Cin/group, kh, kw]: one output channel
      const per = q.length / w.dims[0];
      for (let c = 0; c < w.dims[0]; c++) integer.push(q.slice(c * per, (c + 1) * per));
    }
  }
  return { weightOnly, integer, nodes };
}

/** the worst uint8 input for a weight vector: 255 where q has the wanted sign, else 0 */
const worstInput = (q: Int8Array, sign: 1 | -1) => Uint8Array.from(q, (v) => (v * sign > 0 ? 255 : 0));
const twoLargest = (q: Int8Array) => { let a = 0, b = 0; for (const v of q) { const x = Math.abs(v); if (x > a) { b = a; a = x; } else if (x > b) b = x; } return a + b; };

const TINY = getPreset('mnist-tiny').model;
let floatModelBytes: Uint8Array;
let ranges: Map<string, [number, number]>;
const ready = once(async () => {
  await requireOrt();
  floatModelBytes = exportOnnx(TINY, randomParams(TINY, 31)).bytes;
  ranges = await calibrate(decodeModel(floatModelBytes), mnistCalibration(TINY, DEFAULT_SCHEDULE, 64, 64, 0), TINY);
});

const VARIANTS: [string, 'dynamic' | 'static', QuantizeOptions][] = [
  ['dynamic', 'dynamic', {}], ['dynamic, ConvInteger', 'dynamic', { dynamicConv: 'integer' }], ['static', 'static', {}],
];

test('exported integers never saturate the AVX2 kernel (bound on every column), the old full-range ones do', async () => {
  await ready();
  for (const [label, mode, o] of VARIANTS) {
    const q = quantizeModel(decodeModel(floatModelBytes), mode, { ...o, ranges });
    assert.is(JSON.parse(q.model.metadata[QUANT_META_KEY]).scheme, 'reduce-range', `${label}: the default scheme, recorded in the file`);
    const w = integerKernelWeights(q.model);
    const convs = mode === 'static' || o.dynamicConv === 'integer' ? q.report.counts.Conv : 0;
    assert.is(w.nodes, q.report.counts.MatMul + q.report.counts.Gemm + convs, `${label}: every integer-kernel weight found`);
    for (const col of w.integer) {
      // any pair of products, whatever order the kernel packs K in, is at most 255 * (the two largest |q|)
      assert.ok(255 * twoLargest(col) <= INT16_MAX, `${label}: a column with |q| up to ${twoLargest(col)} (two largest) can saturate`);
      for (const s of [1, -1] as const) {
        const a = worstInput(col, s);
        assert.is(avx2Dot(a, col), exactDot(a, col), `${label}: emulated AVX2 = exact on the worst input`);
      }
    }
    if (mode === 'dynamic' && !o.dynamicConv) {
      assert.ok(w.weightOnly.length > 0 && w.weightOnly.some((c) => c.some((v) => Math.abs(v) === 127)), 'weight-only Convs keep 8-bit weights (no integer kernel reads them)');
    }
    const old = integerKernelWeights(quantizeModel(decodeModel(floatModelBytes), mode, { ...o, ranges, scheme: 'full-range' }).model);
    const saturating = old.integer.filter((col) => [1, -1].some((s) => { const a = worstInput(col, s as 1 | -1); return avx2Dot(a, col) !== exactDot(a, col); }));
    assert.ok(saturating.length > 0.9 * old.integer.length, `${label}, full-range: ${saturating.length} of ${old.integer.length} outputs saturate on their worst input`);
  }
  throwsDriftlab(() => quantizeModel(decodeModel(floatModelBytes), 'dynamic', { scheme: 'int7' as any }), /^unknown int8 scheme 'int7'; choose reduce-range or full-range$/);
});

// ---------------------------------------------------------------------------------------------
// the worst case in onnxruntime
// ---------------------------------------------------------------------------------------------
// activations: lo = -1 and hi = 127/128 quantize exactly (scale 1/128, zero point 128) to 0 and 255
const LO = -1, HI = 127 / 128, K = 32, N = 6, M = 4;
/** row 0 all hi, row 1 all lo, row 2 alternating, row 3 random: [M, K] */
function extremeActivations(rng: Rng): Float64Array {
  return Float64Array.from({ length: M * K }, (_, i) => {
    const r = Math.floor(i / K), k = i % K;
    return r === 0 ? HI : r === 1 ? LO : r === 2 ? (k % 2 ? LO : HI) : rng.uniform() < 0.5 ? LO : HI;
  });
}
/** output j reads weights of one magnitude c_j (so they quantize exactly to +-qmax): column 0 all +, 1 all -, the rest random signs; [N, K] */
function extremeWeights(rng: Rng): Float64Array {
  const c = Float64Array.from({ length: N }, (_, j) => 0.25 + 0.5 * j);
  return Float64Array.from({ length: N * K }, (_, i) => {
    const j = Math.floor(i / K);
    return c[j] * (j === 0 ? 1 : j === 1 ? -1 : rng.uniform() < 0.5 ? -1 : 1);
  });
}
/** float64 reference: y[m][j] = sum_k a[m][k] w[j][k] */
const reference = (a: Float64Array, w: Float64Array) => Float64Array.from({ length: M * N }, (_, i) => {
  const m = Math.floor(i / N), j = i % N;
  let s = 0;
  for (let k = 0; k < K; k++) s += a[m * K + k] * w[j * K + k];
  return s;
});

function graph(nodes: NodeProto[], inputs: [string, (number | string)[]][], outputs: [string, (number | string)[]][], inits: [string, number[], Float64Array][]): ModelProto {
  const vi = ([name, dims]: [string, (number | string)[]]) => ({ name, elemType: DataType.FLOAT, dims });
  return {
    irVersion: 8, opsetImports: [{ domain: '', version: 17 }], producerName: 't', producerVersion: '', docString: '', metadata: {},
    graph: {
      name: 'g', nodes, inputs: inputs.map(vi), outputs: outputs.map(vi),
      initializers: inits.map(([name, dims, v]) => ({ name, dims, dataType: DataType.FLOAT, rawData: f32Bytes(Float32Array.from(v)) })),
    },
  };
}

async function runOrt(m: ModelProto, input: string, data: Float64Array, dims: number[], output: string): Promise<Float32Array> {
  const ort = (await loadOrt()).ort!;
  const s = await ort.InferenceSession.create(encodeModel(m), { graphOptimizationLevel: 'all', logSeverityLevel: 3 });
  try {
    const x = new ort.Tensor('float32', Float32Array.from(data), dims);
    const r = await s.run({ [input]: x });
    const y = Float32Array.from(r[output].data as Float32Array);
    x.dispose();
    for (const t of Object.values(r)) t.dispose();
    return y;
  } finally {
    await s.release();
  }
}

const maxAbs = (v: ArrayLike<number>) => { let m = 0; for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i])); return m; };
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };

test('onnxruntime, MatMul at the ends of the 8-bit range: the default scheme matches float64 (exact quantization, float rounding only)', async () => {
  await requireOrt();
  const rng = new Rng(14), A = extremeActivations(rng), W = extremeWeights(rng);
  const Wkn = Float64Array.from({ length: K * N }, (_, i) => W[(i % N) * K + Math.floor(i / N)]);
  const mm = graph([{ name: 'mm', opType: 'MatMul', domain: '', inputs: ['a', 'w'], outputs: ['y'], attributes: [] }], [['a', ['m', K]]], [['y', ['m', N]]], [['w', [K, N], Wkn]]);
  const ref = reference(A, W);
  // the very integers of this case would saturate the old scheme: row 0 (all 255) times column 0 (all +127)
  const old = integerKernelWeights(quantizeModel(mm, 'dynamic', { scheme: 'full-range' }).model).integer[0];
  assert.is(old[0], 127);
  assert.ok(avx2Dot(new Uint8Array(K).fill(255), old) < exactDot(new Uint8Array(K).fill(255), old) / 1.9, 'full-range saturates here');
  const got = await runOrt(quantizeModel(mm, 'dynamic').model, 'a', A, [M, K], 'y');
  const e = maxDiff(got, ref) / maxAbs(ref);
  assert.ok(e < 1e-4, `reduce-range MatMulInteger: max error ${(100 * e).toExponential(2)}% of max |y| (saturation gives ~50%)`);
});

test('onnxruntime, static QDQ Conv (QLinearConv) at the ends of the 8-bit range matches float64 within the output rounding', async () => {
  await requireOrt();
  const rng = new Rng(15), A = extremeActivations(rng), W = extremeWeights(rng);
  // x [1, K, 1, M] NCHW: pixel m holds row m of A; W [N, K, 1, 1]
  const X = Float64Array.from({ length: K * M }, (_, i) => A[(i % M) * K + Math.floor(i / M)]);
  const conv = graph(
    [{ name: 'conv', opType: 'Conv', domain: '', inputs: ['x', 'w', 'b'], outputs: ['y'], attributes: [{ name: 'kernel_shape', type: AttrType.INTS, ints: [1, 1] }] }],
    [['x', [1, K, 1, M]]], [['y', [1, N, 1, M]]], [['w', [N, K, 1, 1], W], ['b', [N], new Float64Array(N)]],
  );
  const ref = reference(A, W); // [M, N]; the Conv writes [N, M]
  const refNM = Float64Array.from({ length: N * M }, (_, i) => ref[(i % M) * N + Math.floor(i / M)]);
  const yr: [number, number] = [Math.min(...refNM), Math.max(...refNM)];
  const q = quantizeModel(conv, 'static', { ops: ['Conv'], ranges: new Map([['x', [LO, HI]], ['y', yr]]) });
  assert.ok(integerKernelWeights(q.model).integer.every((c) => c.every((v) => Math.abs(v) === 63)), 'weights at the ends of the 7-bit range');
  const got = await runOrt(q.model, 'x', X, [1, K, 1, M], 'y');
  // the only rounding left is the uint8 output: |error| <= its scale (half a step, plus the zero point's rounding)
  const sy = (Math.max(yr[1], 0) - Math.min(yr[0], 0)) / 255;
  const e = maxDiff(got, refNM);
  assert.ok(e <= sy * 1.001, `QLinearConv: max error ${e.toFixed(4)} > output scale ${sy.toFixed(4)} (saturation gives ~${(maxAbs(refNM) / 2).toFixed(1)})`);
});

// ---------------------------------------------------------------------------------------------
// the line that names the scheme and the CPU
// ---------------------------------------------------------------------------------------------
const flags = (f: string) => `processor\t: 0\nvendor_id\t: X\nflags\t\t: fpu sse4_2 ${f}\nbugs\t\t:\n`;

test('cpuInt8 reads /proc/cpuinfo flags: VNNI, AVX-512BW and AVX2 kernels; ARM; unknown elsewhere', () => {
  const epyc = cpuInt8(flags('avx avx2 fma'), 'x64', 'linux');
  assert.equal(epyc, { what: 'x86-64 avx2', kernel: 'avx2', saturatesFullRange: true });
  assert.equal(cpuInt8(flags('avx2 avx512f avx512bw'), 'x64', 'linux'), { what: 'x86-64 avx2 avx512f avx512bw', kernel: 'avx512bw', saturatesFullRange: true });
  assert.is(cpuInt8(flags('avx2 avx512f avx512bw avx512_vnni'), 'x64', 'linux').kernel, 'vnni');
  assert.equal(cpuInt8(flags('avx2 avx_vnni'), 'x64', 'linux'), { what: 'x86-64 avx2 avx_vnni', kernel: 'vnni', saturatesFullRange: false });
  assert.equal(cpuInt8(flags('sse4_1'), 'x64', 'linux'), { what: 'x86-64 without avx2', kernel: 'x86-other', saturatesFullRange: false });
  assert.equal(cpuInt8('processor : 0\n', 'x64', 'linux').kernel, 'unknown');
  assert.equal(cpuInt8(null, 'x64', 'linux').kernel, 'unknown');
  assert.equal(cpuInt8(undefined, 'arm64', 'linux'), { what: 'arm64', kernel: 'arm', saturatesFullRange: false });
  assert.equal(cpuInt8(undefined, 'x64', 'darwin'), { what: 'unknown (darwin x64)', kernel: 'unknown', saturatesFullRange: false });
  assert.ok(cpuInt8().what.length > 0, 'this machine');
});

test('int8Line names the scheme, the CPU features and the verdict in one line', () => {
  const epyc = cpuInt8(flags('avx2'), 'x64', 'linux'), vnni = cpuInt8(flags('avx2 avx512_vnni'), 'x64', 'linux');
  const l = int8Line('static', 'reduce-range', epyc);
  assert.match(l, /^int8 static, scheme reduce-range \(7-bit weights .*\); cpu x86-64 avx2: onnxruntime uses u8s8 kernels with AVX2 vpmaddubsw \(int16 pair sums\): cannot saturate$/);
  assert.match(int8Line('dynamic', 'full-range', epyc), /scheme full-range .*: WILL SATURATE \(large errors\); re-export with this driftlab \(reduce-range\)$/);
  assert.match(int8Line('dynamic', 'full-range', vnni), /cpu x86-64 avx2 avx512_vnni: onnxruntime uses u8s8 kernels with VNNI \(int32 sums, exact\): exact on this CPU only$/);
  assert.match(int8Line('dynamic', 'reduce-range', cpuInt8(undefined, 'arm64', 'linux')), /cpu arm64: onnxruntime uses ARM int8 kernels/);
  for (const s of [l, int8Line('dynamic', 'full-range', epyc)]) assert.not.match(s, /\n/);
});

test.run();
