/**
 * int8 quantization of an exported U-Net, written over the decoded ModelProto (no Python), in the
 * two forms onnxruntime's own quantizer writes. Weights become int8 in the file.
 *
 * dynamic (quantize_dynamic): activations are quantized per call, per tensor, by the runtime:
 *   Conv(x, W, b)  ->  xq, xs, xz = DynamicQuantizeLinear(x)                 (uint8, scalars)
 *                      y = Cast<float>(ConvInteger(xq, Wq, xz)) * (xs * sW) + b    sW, b: [Cout,1,1]
 *   MatMul(a, W)   ->  y = Cast<float>(MatMulInteger(aq, Wq, az)) * (as * sW)      sW: [N]
 *   Gemm(a, W, c)  ->  the MatMul form (W transposed when transB, alpha in sW) + beta c
 *
 * static (quantize_static, QDQ format): Conv input and output ranges are calibrated once on real
 * inputs (calibrationModel + calibrate); each Conv becomes
 *   DQ(Q(x; sx, zx)) -> Conv(DQ(Wq; sW), DQ(bq int32; sx sW)) -> Q(.; sy, zy) -> DQ
 * which onnxruntime fuses into QLinearConv (uint8 activations x int8 weights, MLAS kernels).
 * MatMul/Gemm weights take the dynamic form (it fuses to MatMulIntegerToFloat).
 *
 * Weights: symmetric (zero point 0: onnxruntime 1.30's ConvInteger accepts only a per-tensor zero
 * point), Wq = round(W / sW), one scale per output channel of a Conv and per output column of a
 * MatMul. Range (int8-scheme.ts, issue #14): weights read by an integer kernel (MatMulInteger,
 * ConvInteger, static QDQ Convs) are 7-bit, [-63, 63], so that x86 CPUs without VNNI cannot
 * saturate their int16 pair sums and every CPU computes the same result; weights of weight-only
 * Convs are dequantized to float before the Conv and keep [-127, 127]. An input read by several layers (attention q, k, v) is quantized
 * once. MatMuls of two activations (q k^T, softmax @ v) stay float: their ranges change with
 * every call and the attention softmax is where 8 bits would hurt most.
 */
import { addNoise, makeSchedule, type ScheduleConfig } from '../diffusion/schedule.js';
import type { UNetConfig } from '../diffusion/config.js';
import { loadBundledMnist, toFloat } from '../../datasets/mnist/index.js';
import { DriftlabError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import {
  AttrType, AttributeProto, DataType, ModelProto, NodeProto, TensorProto, bytesF32, checkModel, encodeModel, f32Bytes, readModel,
} from './onnx-proto.js';
import { DEFAULT_INT8_SCHEME, Int8Scheme, integerWeightQmax } from './int8-scheme.js';
import { loadOrt } from './onnx-engine.js';

export type QuantizeMode = 'dynamic' | 'static';
export const QUANTIZE_MODES: QuantizeMode[] = ['dynamic', 'static'];
export type QuantizableOp = 'Conv' | 'MatMul' | 'Gemm';
export const QUANT_META_KEY = 'driftlab.quantization';
/**
 * The first and last convolutions stay float32 by default: they see the raw x_t and write the
 * prediction itself, hold 0.1% of the weights and cost little, and quantizing them doubled the
 * output error of the shipped mnist-small checkpoint (docs/BENCHMARKS.md, int8).
 */
export const KEEP_FLOAT = ['conv_in.', 'conv_out.'];

export interface QuantizeOptions {
  /** which layer types get int8 weights (default all three) */
  ops?: QuantizableOp[];
  /** weights whose initializer name contains one of these stay float32 (default KEEP_FLOAT) */
  exclude?: string[];
  /**
   * weights read by integer kernels: 'reduce-range' (default, 7-bit: exact on every CPU) or
   * 'full-range' (8-bit: saturates on x86 without VNNI; for measurements and tests only)
   */
  scheme?: Int8Scheme;
  /**
   * dynamic: how a Conv runs. 'integer' = DynamicQuantizeLinear + ConvInteger (onnxruntime 1.30's
   * CPU ConvInteger is ~5x slower than its float Conv with int8 weights); 'weight-only' (default) =
   * int8 weights, DequantizeLinear -> float Conv (a 4x smaller file, float speed and accuracy).
   */
  dynamicConv?: 'integer' | 'weight-only';
  /** static: calibrated [min, max] of every tensor calibrationModel() lists */
  ranges?: Map<string, [number, number]>;
  /** static: how the ranges were obtained (recorded in the file's metadata) */
  calibration?: string;
}

export interface QuantizeReport {
  mode: QuantizeMode;
  /** initializer names of the weights now stored as int8 */
  quantized: string[];
  /** Conv/MatMul/Gemm weights left float32 (excluded) */
  kept: string[];
  counts: Record<QuantizableOp, number>;
  /** raw bytes of the quantized weights, before and after */
  floatBytes: number;
  int8Bytes: number;
}

/** `--quantize` values: none | dynamic | static. */
export function parseQuantizeMode(v: unknown): QuantizeMode | null {
  if (v === undefined || v === null || v === 'none' || v === false) return null;
  if (QUANTIZE_MODES.includes(v as QuantizeMode)) return v as QuantizeMode;
  throw new DriftlabError(`unknown quantization '${String(v)}'; choose none, ${QUANTIZE_MODES.join(' or ')}`);
}

/** Symmetric int8 per output channel. w: row-major; the channel of element i is chanOf(i). */
export function quantizeSymmetric(w: Float32Array, channels: number, chanOf: (i: number) => number, qmax = 127): { q: Int8Array; scale: Float32Array } {
  const amax = new Float32Array(channels);
  for (let i = 0; i < w.length; i++) {
    const c = chanOf(i), a = Math.abs(w[i]);
    if (!Number.isFinite(a)) throw new DriftlabError('cannot quantize: the model has non-finite weights; check the checkpoint');
    if (a > amax[c]) amax[c] = a;
  }
  const scale = Float32Array.from(amax, (a) => (a > 0 ? a / qmax : 1));
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = Math.max(-qmax, Math.min(qmax, Math.round(w[i] / scale[chanOf(i)])));
  return { q, scale };
}

/** asymmetric uint8 for an activation range (0 always representable, as ONNX requires) */
function uint8Params([lo, hi]: [number, number]): { s: number; z: number } {
  lo = Math.min(lo, 0); hi = Math.max(hi, 0);
  const s = (hi - lo) / 255 || 1;
  return { s, z: Math.max(0, Math.min(255, Math.round(-lo / s))) };
}

const isQuantized = (m: ModelProto) => !!m.metadata[QUANT_META_KEY] || m.graph.nodes.some((n) => /Integer$|^QLinear|QuantizeLinear$/.test(n.opType));

/** Bytes of a float32 .onnx file -> the quantized file. `what` names the input in errors. */
export function quantizeOnnxBytes(bytes: Uint8Array, mode: QuantizeMode | string, o: QuantizeOptions = {}, what = 'the model'): { bytes: Uint8Array; report: QuantizeReport } {
  const r = quantizeModel(readModel(bytes, what), mode, o, what);
  return { bytes: encodeModel(r.model), report: r.report };
}

export function quantizeModel(m: ModelProto, modeIn: QuantizeMode | string, o: QuantizeOptions = {}, what = 'the model'): { model: ModelProto; report: QuantizeReport } {
  const mode = parseQuantizeMode(modeIn);
  if (!mode) throw new DriftlabError(`unknown quantization '${String(modeIn)}'; choose ${QUANTIZE_MODES.join(' or ')}`);
  const ops = new Set<string>(o.ops ?? ['Conv', 'MatMul', 'Gemm']);
  for (const op of ops) if (!['Conv', 'MatMul', 'Gemm'].includes(op)) throw new DriftlabError(`cannot quantize op '${op}'; choose from Conv, MatMul, Gemm`);
  if (isQuantized(m)) throw new DriftlabError(`${what} is already quantized; quantize the float32 export instead`);
  if (mode === 'static' && !o.ranges) throw new DriftlabError('static quantization needs calibrated ranges (run calibrate() on real inputs first)');
  const scheme = o.scheme ?? DEFAULT_INT8_SCHEME;
  const qmax = integerWeightQmax(scheme); // weights an integer kernel reads; weight-only Convs: 127
  const inits = new Map(m.graph.initializers.map((t) => [t.name, t]));
  const names = new Set<string>([...inits.keys(), ...m.graph.inputs.map((v) => v.name), ...m.graph.nodes.flatMap((n) => n.outputs)]);
  const fresh = (base: string) => { let s = base; for (let k = 1; names.has(s); k++) s = `${base}_${k}`; names.add(s); return s; };
  const added: TensorProto[] = [];
  const addInit = (base: string, dims: number[], dataType: number, raw: Uint8Array) => {
    const name = fresh(base);
    added.push({ name, dims, dataType, rawData: raw });
    return name;
  };
  const nodes: NodeProto[] = [];
  let k = 0;
  const emit = (op: string, inputs: string[], out: string, attributes: AttributeProto[] = [], more: string[] = []) => {
    nodes.push({ name: `${op}_q${k++}`, opType: op, domain: '', inputs, outputs: [out, ...more], attributes });
    return out;
  };
  const axis0: AttributeProto[] = [{ name: 'axis', type: AttrType.INT, i: 0 }];
  const dql = new Map<string, [string, string, string]>(); // dynamic: activation -> [xq, xs, xz]
  const dynInput = (x: string) => {
    let hit = dql.get(x);
    if (!hit) {
      hit = [fresh(`${x}_quantized`), fresh(`${x}_scale`), fresh(`${x}_zero_point`)];
      emit('DynamicQuantizeLinear', [x], hit[0], [], hit.slice(1));
      dql.set(x, hit);
    }
    return hit;
  };
  const qParams = new Map<string, { s: number; z: number; q: string; sName: string; zName: string }>(); // static
  const staticQ = (x: string, rangeOf = x) => {
    let p = qParams.get(x);
    if (!p) {
      const range = o.ranges!.get(rangeOf);
      if (!range || !range.every(Number.isFinite)) throw new DriftlabError(`static quantization: no calibrated range for ${x}; calibrate with this very model`);
      const { s, z } = uint8Params(range);
      const sName = addInit(`${x}_scale`, [], DataType.FLOAT, f32Bytes(Float32Array.of(s)));
      const zName = addInit(`${x}_zero_point`, [], DataType.UINT8, Uint8Array.of(z));
      p = { s, z, sName, zName, q: emit('QuantizeLinear', [x, sName, zName], fresh(`${x}_quantized`)) };
      qParams.set(x, p);
    }
    return p;
  };
  const zero = addInit('int8_zero_point', [], DataType.INT8, new Uint8Array(1));
  const report: QuantizeReport = { mode, quantized: [], kept: [], counts: { Conv: 0, MatMul: 0, Gemm: 0 }, floatBytes: 0, int8Bytes: 0 };
  /** dynamic: out = Cast(intOut) * (xs * sW) [+ bias] */
  const rescale = (intOut: string, xs: string, sW: string, out: string, bias?: string) => {
    const f = emit('Cast', [intOut], fresh(`${intOut}_float`), [{ name: 'to', type: AttrType.INT, i: DataType.FLOAT }]);
    const s = emit('Mul', [xs, sW], fresh(`${sW}_times_x`));
    if (!bias) return emit('Mul', [f, s], out);
    return emit('Add', [emit('Mul', [f, s], fresh(`${out}_unbiased`)), bias], out);
  };

  for (const n of m.graph.nodes) {
    const w = inits.get(n.inputs[1] ?? '');
    const attr = (name: string) => n.attributes.find((a) => a.name === name);
    let plan: null | QuantizableOp = null;
    if (w && w.dataType === DataType.FLOAT && !inits.has(n.inputs[0]) && ops.has(n.opType)) {
      if (n.opType === 'Conv' && w.dims.length >= 3) plan = 'Conv';
      if (n.opType === 'MatMul' && w.dims.length === 2) plan = 'MatMul';
      if (n.opType === 'Gemm' && w.dims.length === 2 && !attr('transA')?.i) plan = 'Gemm';
    }
    if (plan && (o.exclude ?? KEEP_FLOAT).some((e) => w!.name.includes(e))) { report.kept.push(w!.name); plan = null; }
    if (!plan) { nodes.push(n); continue; }
    const W = bytesF32(w!.rawData);
    report.floatBytes += w!.rawData.length;
    report.int8Bytes += W.length;
    report.quantized.push(w!.name);
    report.counts[plan]++;
    if (plan === 'Conv') {
      // W: [Cout, Cin/group, kh, kw]: one scale per output channel (the leading axis)
      const cout = w!.dims[0], per = W.length / cout;
      const weightOnly = mode === 'dynamic' && (o.dynamicConv ?? 'weight-only') === 'weight-only';
      const { q, scale } = quantizeSymmetric(W, cout, (i) => Math.floor(i / per), weightOnly ? 127 : qmax);
      const wq = addInit(`${w!.name}_int8`, w!.dims, DataType.INT8, new Uint8Array(q.buffer));
      const b = n.inputs[2] ? inits.get(n.inputs[2]) : undefined;
      if (n.inputs[2] && (!b || b.dataType !== DataType.FLOAT)) throw new DriftlabError(`cannot quantize ${n.name || 'a Conv'}: its bias ${n.inputs[2]} is not a float32 initializer`);
      const keep = n.attributes.filter((a) => ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides'].includes(a.name));
      if (mode === 'static') {
        const x = staticQ(n.inputs[0]);
        const xdq = emit('DequantizeLinear', [x.q, x.sName, x.zName], fresh(`${n.inputs[0]}_dequantized`));
        const sW = addInit(`${w!.name}_scale`, [cout], DataType.FLOAT, f32Bytes(scale));
        const wdq = emit('DequantizeLinear', [wq, sW, addInit(`${w!.name}_zero_point`, [cout], DataType.INT8, new Uint8Array(cout))], fresh(`${w!.name}_dequantized`), axis0);
        const inputs = [xdq, wdq];
        if (b) { // int32 bias at scale sx * sW, as QLinearConv wants it
          const bs = Float32Array.from(scale, (v) => v * x.s), bf = bytesF32(b.rawData);
          const bq = Int32Array.from(bf, (v, i) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(v / bs[i]))));
          const bqName = addInit(`${b.name}_int32`, [cout], DataType.INT32, new Uint8Array(bq.buffer));
          const bsName = addInit(`${b.name}_scale`, [cout], DataType.FLOAT, f32Bytes(bs));
          inputs.push(emit('DequantizeLinear', [bqName, bsName, addInit(`${b.name}_zero_point`, [cout], DataType.INT32, new Uint8Array(4 * cout))], fresh(`${b.name}_dequantized`), axis0));
        }
        const y = emit('Conv', inputs, fresh(`${n.outputs[0]}_float`), keep);
        const yq = staticQ(y, n.outputs[0]);
        emit('DequantizeLinear', [yq.q, yq.sName, yq.zName], n.outputs[0]);
        continue;
      }
      if (weightOnly) {
        const sW = addInit(`${w!.name}_scale`, [cout], DataType.FLOAT, f32Bytes(scale));
        const wdq = emit('DequantizeLinear', [wq, sW, addInit(`${w!.name}_zero_point`, [cout], DataType.INT8, new Uint8Array(cout))], fresh(`${w!.name}_dequantized`), axis0);
        nodes.push({ ...n, inputs: [n.inputs[0], wdq, ...n.inputs.slice(2)] });
        continue;
      }
      const chanDims = [cout, ...w!.dims.slice(2).map(() => 1)]; // broadcasts over [N, Cout, H, W]
      const sW = addInit(`${w!.name}_scale`, chanDims, DataType.FLOAT, f32Bytes(scale));
      const [xq, xs, xz] = dynInput(n.inputs[0]);
      const yi = emit('ConvInteger', [xq, wq, xz, zero], fresh(`${n.outputs[0]}_int32`), keep);
      rescale(yi, xs, sW, n.outputs[0], b && addInit(`${b.name}_channels`, chanDims, DataType.FLOAT, b.rawData));
      continue;
    }
    // MatMul / Gemm: W [K, N] (Gemm with transB: [N, K]); one scale per output column
    const transB = plan === 'Gemm' && !!attr('transB')?.i;
    const [K, N] = transB ? [w!.dims[1], w!.dims[0]] : w!.dims;
    const Wkn = transB ? Float32Array.from({ length: K * N }, (_, i) => W[(i % N) * K + Math.floor(i / N)]) : W;
    const { q, scale } = quantizeSymmetric(Wkn, N, (i) => i % N, qmax);
    const alpha = plan === 'Gemm' ? attr('alpha')?.f ?? 1 : 1;
    for (let j = 0; j < N; j++) scale[j] *= alpha;
    const wq = addInit(`${w!.name}_int8`, [K, N], DataType.INT8, new Uint8Array(q.buffer));
    const sW = addInit(`${w!.name}_scale`, [N], DataType.FLOAT, f32Bytes(scale));
    const [xq, xs, xz] = dynInput(n.inputs[0]);
    const yi = emit('MatMulInteger', [xq, wq, xz, zero], fresh(`${n.outputs[0]}_int32`));
    const beta = attr('beta')?.f ?? 1;
    const c = plan === 'Gemm' && n.inputs[2] && beta !== 1
      ? emit('Mul', [n.inputs[2], addInit('gemm_beta', [], DataType.FLOAT, f32Bytes(Float32Array.of(beta)))], fresh('gemm_c'))
      : plan === 'Gemm' ? n.inputs[2] || undefined : undefined;
    rescale(yi, xs, sW, n.outputs[0], c);
  }
  if (!report.quantized.length) {
    throw new DriftlabError(`${what} has no float32 ${[...ops].join('/')} weights to quantize${report.kept.length ? ` (all ${report.kept.length} excluded)` : ''}`);
  }
  // float weights (and Conv biases, re-laid out) that nothing reads any more are dropped
  const read = new Set([...nodes.flatMap((n) => n.inputs), ...m.graph.outputs.map((v) => v.name)]);
  const model: ModelProto = {
    ...m,
    docString: `${m.docString}${m.docString ? '; ' : ''}int8 ${mode} quantization by driftlab`,
    graph: { ...m.graph, nodes, initializers: [...m.graph.initializers, ...added].filter((t) => read.has(t.name)) },
    metadata: {
      ...m.metadata,
      [QUANT_META_KEY]: JSON.stringify({
        mode, scheme,
        weights: `int8 symmetric, per output channel (Conv) / column (MatMul); ${qmax === 127 ? '8' : '7'}-bit range where an integer kernel reads them, 8-bit in weight-only Convs`,
        conv: mode === 'static' ? 'qdq' : o.dynamicConv ?? 'weight-only', matmul: 'dynamic',
        activations: mode === 'static' ? `Conv: uint8 per tensor, calibrated (${o.calibration ?? 'min/max'}); MatMul: uint8 per tensor at run time` : 'uint8 per tensor at run time (DynamicQuantizeLinear)',
        quantized: report.counts, kept: report.kept,
      } satisfies QuantMeta),
    },
  };
  const bad = checkModel(model);
  if (bad) throw new Error(`quantize produced an invalid graph: ${bad}`); // a driftlab bug, not a user error
  return { model, report };
}

/**
 * What a quantized file records in its metadata (QUANT_META_KEY). conv: 'qdq' (QLinearConv after
 * fusion), 'integer' (ConvInteger) or 'weight-only' (DequantizeLinear -> float Conv).
 */
export interface QuantMeta {
  mode: QuantizeMode;
  /** absent in files written before issue #14: those are 'full-range' */
  scheme: Int8Scheme;
  weights: string;
  conv: 'qdq' | 'integer' | 'weight-only';
  matmul: 'dynamic';
  activations: string;
  quantized: Record<QuantizableOp, number>;
  kept: string[];
}

// ---------------------------------------------------------------------------------------------
// static calibration
// ---------------------------------------------------------------------------------------------
export interface CalibrationBatch { x: Float32Array; t: Float32Array; labels?: Int32Array }

/** The float model plus scalar outputs min_i / max_i of every tensor static quantization needs. */
export function calibrationModel(m: ModelProto): { model: ModelProto; tensors: string[] } {
  const inits = new Set(m.graph.initializers.map((t) => t.name));
  const convs = m.graph.nodes.filter((n) => n.opType === 'Conv' && inits.has(n.inputs[1] ?? '') && !inits.has(n.inputs[0]));
  const tensors = [...new Set(convs.flatMap((n) => [n.inputs[0], n.outputs[0]]))];
  const keep0: AttributeProto[] = [{ name: 'keepdims', type: AttrType.INT, i: 0 }];
  const extra = tensors.flatMap((t, i) => (['ReduceMin', 'ReduceMax'] as const).map((op): NodeProto => ({
    name: `calib_${op}_${i}`, opType: op, domain: '', inputs: [t], outputs: [`calib_${op}_${i}`], attributes: keep0,
  })));
  const outputs = extra.map((n) => ({ name: n.outputs[0], elemType: DataType.FLOAT, dims: [] }));
  return { model: { ...m, graph: { ...m.graph, nodes: [...m.graph.nodes, ...extra], outputs: [...m.graph.outputs, ...outputs] } }, tensors };
}

/** Run the float model on the batches in onnxruntime; min/max of each Conv input and output. */
export async function calibrate(m: ModelProto, batches: CalibrationBatch[], config: UNetConfig): Promise<Map<string, [number, number]>> {
  const status = await loadOrt();
  if (!status.ort) throw new DriftlabError(`static quantization runs the model to calibrate it: ${status.error}`);
  if (!batches.length) throw new DriftlabError('static quantization needs at least one calibration batch');
  const ort = status.ort, { model, tensors } = calibrationModel(m);
  const session = await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'all', logSeverityLevel: 3 });
  const ranges = new Map<string, [number, number]>(tensors.map((t) => [t, [Infinity, -Infinity]]));
  try {
    const S = config.sampleSize;
    for (const b of batches) {
      const B = b.t.length;
      const feeds: Record<string, InstanceType<typeof ort.Tensor>> = { x: new ort.Tensor('float32', b.x, [B, S, S, config.inChannels]), t: new ort.Tensor('float32', b.t, [B]) };
      if (config.numClasses > 0) feeds.labels = new ort.Tensor('int64', BigInt64Array.from(b.labels ?? new Int32Array(B).fill(config.numClasses), (v) => BigInt(v)), [B]);
      const r = await session.run(feeds);
      tensors.forEach((t, i) => {
        const range = ranges.get(t)!;
        range[0] = Math.min(range[0], (r[`calib_ReduceMin_${i}`].data as Float32Array)[0]);
        range[1] = Math.max(range[1], (r[`calib_ReduceMax_${i}`].data as Float32Array)[0]);
      });
    }
  } finally {
    await session.release();
  }
  return ranges;
}

/**
 * What the network sees while sampling: x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps on real
 * MNIST digits (the bundled 10,000) at t ~ U{0..T-1}; labels: the digit's own, or the null class
 * with probability 1/(K+1) (guided sampling runs both).
 */
export function mnistCalibration(config: UNetConfig, schedule: ScheduleConfig, n = 512, batch = 64, seed = 0): CalibrationBatch[] {
  if (config.sampleSize !== 28 || config.inChannels !== 1) {
    throw new DriftlabError(`static calibration draws MNIST digits (28x28x1); this model takes ${config.sampleSize}x${config.sampleSize}x${config.inChannels}: use --quantize dynamic`);
  }
  const data = loadBundledMnist(), s = makeSchedule(schedule), rng = new Rng(seed).fork('calibration'), D = 28 * 28;
  const out: CalibrationBatch[] = [];
  for (let start = 0; start < n; start += batch) {
    const B = Math.min(batch, n - start);
    const idx = Array.from({ length: B }, () => rng.int(data.n));
    const x0 = new Float32Array(B * D);
    idx.forEach((j, i) => x0.set(toFloat(data.images.subarray(j * D, (j + 1) * D)), i * D));
    const t = Int32Array.from({ length: B }, () => rng.int(s.T));
    const x = addNoise(s, x0, rng.normals(B * D), t);
    const labels = config.numClasses > 0 ? Int32Array.from(idx, (j) => (rng.uniform() < 1 / (config.numClasses + 1) ? config.numClasses : data.labels[j])) : undefined;
    out.push({ x, t: Float32Array.from(t), labels });
  }
  return out;
}
