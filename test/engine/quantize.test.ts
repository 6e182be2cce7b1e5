/**
 * int8 quantization (engine/quantize.ts): the quantized files run in onnxruntime and stay close to
 * float32, hold int8 weights, are smaller, and bad requests are one DriftlabError line.
 *
 * Tolerances on mnist-tiny with random weights and random inputs (x ~ N(0,1), t ~ U{0..999}),
 * relative to the float32 output (RMS of the difference / RMS of the output; max |difference| /
 * max |output|): dynamic < 2.5% and < 6%, static < 7% and < 12%. Measured: dynamic 0.7% / 1.3%,
 * dynamic with ConvInteger 1.9% / 2.8%, static 3.4% / 5.1% (static quantizes every Conv's input
 * and output to uint8 with ranges calibrated on noisy MNIST digits, not on these N(0,1) inputs;
 * 8/16-channel layers with random weights are its worst case). Why errors of this size: symmetric
 * per-channel int8 rounds each weight by up to 1/254 of its channel's largest, each uint8
 * activation by up to 1/510 of its tensor's range, compounded over ~20 layers. The bounds leave
 * ~2x headroom; a wrong scale, zero point or layout gives errors of the order of the output (100%).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHECKPOINT_FORMAT, saveCheckpoint } from '../../src/diffusion/checkpoint.js';
import { flatLayout, joinFlat } from '../../src/diffusion/model.js';
import { DEFAULT_OBJECTIVE } from '../../src/diffusion/objective.js';
import { getPreset } from '../../src/diffusion/presets.js';
import { DEFAULT_SCHEDULE } from '../../src/diffusion/schedule.js';
import { unetParamSpecs } from '../../src/diffusion/unet.js';
import { exportOnnx } from '../../src/engine/export.js';
import { OnnxUNet, loadOrt } from '../../src/engine/onnx-engine.js';
import { AttrType, DataType, ModelProto, decodeModel, encodeModel, f32Bytes } from '../../src/engine/onnx-proto.js';
import {
  KEEP_FLOAT, QUANT_META_KEY, calibrate, mnistCalibration, parseQuantizeMode, quantizeModel, quantizeOnnxBytes, quantizeSymmetric,
} from '../../src/engine/quantize.js';
import { Rng } from '../../src/util/rng.js';
import { rejectsDriftlab, throwsDriftlab } from '../helpers/backend.js';
import { tempDir } from '../helpers/common.js';
import { once, randomParams, requireOrt } from './helpers.js';

const TINY = getPreset('mnist-tiny').model; // 8/16 channels, attention, 10 classes
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.js');
const tmp = tempDir('driftlab-quantize-');
const B = 8;

let floatBytes: Uint8Array;
let floatModel: ModelProto;
let ranges: Map<string, [number, number]>;
const ready = once(async () => {
  await requireOrt();
  floatBytes = exportOnnx(TINY, randomParams(TINY, 31)).bytes;
  floatModel = decodeModel(floatBytes);
  ranges = await calibrate(floatModel, mnistCalibration(TINY, DEFAULT_SCHEDULE, 128, 64, 0), TINY);
});

/** random inputs: x ~ N(0,1), t ~ U{0..999}, labels incl. the null class */
function inputs(seed: number) {
  const rng = new Rng(seed);
  return {
    x: rng.normals(B * 28 * 28), t: Float32Array.from({ length: B }, () => rng.int(1000)),
    labels: Int32Array.from({ length: B }, (_, i) => i % (TINY.numClasses + 1)),
  };
}

async function run(bytes: Uint8Array, inp: ReturnType<typeof inputs>): Promise<Float32Array> {
  const u = await OnnxUNet.create(bytes, TINY, { threads: 1 });
  try {
    return Float32Array.from(await u.run(inp.x, B, inp.t, inp.labels));
  } finally {
    await u.release();
  }
}

function errors(got: Float32Array, ref: Float32Array) {
  let max = 0, refMax = 0, se = 0, ref2 = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(got[i] - ref[i]);
    max = Math.max(max, d); refMax = Math.max(refMax, Math.abs(ref[i])); se += d * d; ref2 += ref[i] * ref[i];
  }
  return { max, relMax: max / refMax, relRms: Math.sqrt(se / ref2) };
}

const TOL = { dynamic: { rms: 0.025, max: 0.06 }, static: { rms: 0.07, max: 0.12 } };
for (const mode of ['dynamic', 'static'] as const) {
  const tol = TOL[mode];
  test(`${mode}: runs in onnxruntime, close to float32 on random inputs (mnist-tiny; rms < ${100 * tol.rms}%, max < ${100 * tol.max}% of max |out|)`, async () => {
    await ready();
    const q = quantizeOnnxBytes(floatBytes, mode, { ranges });
    const u = await OnnxUNet.create(q.bytes, TINY, { threads: 1 });
    assert.is(u.precision, `int8 ${mode}`);
    assert.match(u.line, new RegExp(`1 intra-op thread, int8 ${mode} model`));
    await u.release();
    for (const seed of [1, 2]) {
      const inp = inputs(seed);
      const ref = await run(floatBytes, inp), got = await run(q.bytes, inp);
      const e = errors(got, ref);
      assert.ok(got.every(Number.isFinite), 'finite output');
      assert.ok(e.relRms < tol.rms && e.relMax < tol.max, `${mode}, seed ${seed}: rms ${(100 * e.relRms).toFixed(2)}%, max ${e.max.toFixed(4)} (${(100 * e.relMax).toFixed(1)}% of max |out|)`);
      assert.ok(e.max > 0, 'the int8 file differs from float32 at all');
    }
  });
}

test('the weights in the file are int8: every Conv/MatMul weight but the kept ones; the file is smaller', async () => {
  await ready();
  const inits = new Map(floatModel.graph.initializers.map((t) => [t.name, t]));
  const weights = floatModel.graph.nodes.filter((n) => ['Conv', 'MatMul'].includes(n.opType) && inits.has(n.inputs[1])).map((n) => n.inputs[1]);
  assert.ok(weights.length >= 20, `${weights.length} weight tensors in mnist-tiny`);
  for (const mode of ['dynamic', 'static'] as const) {
    const q = quantizeOnnxBytes(floatBytes, mode, { ranges });
    const m = decodeModel(q.bytes); // as written to disk
    const byName = new Map(m.graph.initializers.map((t) => [t.name, t]));
    const kept = weights.filter((w) => KEEP_FLOAT.some((k) => w.includes(k)));
    assert.equal(kept.sort(), ['conv_in.weight', 'conv_out.weight']);
    assert.equal(q.report.quantized.sort(), weights.filter((w) => !kept.includes(w)).sort());
    for (const w of q.report.quantized) {
      assert.not.ok(byName.has(w), `${mode}: float32 ${w} is gone`);
      const t = byName.get(`${w}_int8`);
      assert.ok(t, `${mode}: ${w}_int8 exists`);
      assert.is(t!.dataType, DataType.INT8, `${mode}: ${w}_int8 data type`);
      assert.equal(t!.dims, inits.get(w)!.dims, `${w}_int8 keeps the float weight's shape`);
      assert.is(t!.rawData.length, t!.dims.reduce((a, b) => a * b, 1), 'one byte per weight');
    }
    for (const w of kept) assert.is(byName.get(w)?.dataType, DataType.FLOAT, `${w} stays float32`);
    const ops = new Set(m.graph.nodes.map((n) => n.opType));
    assert.ok(ops.has('MatMulInteger') && ops.has('DynamicQuantizeLinear'), `${mode}: MatMuls are dynamic`);
    if (mode === 'static') assert.ok(ops.has('QuantizeLinear') && ops.has('DequantizeLinear'), 'QDQ around the Convs');
    assert.is(JSON.parse(m.metadata[QUANT_META_KEY]).mode, mode);
    assert.ok(m.metadata['driftlab.model'], 'the model config is still in the metadata');
    const floatW = q.report.floatBytes, int8W = q.report.int8Bytes;
    assert.is(int8W * 4, floatW, 'report: 1 byte instead of 4 per weight');
    const int8InFile = m.graph.initializers.filter((t) => t.dataType === DataType.INT8 && t.name.endsWith('_int8')).reduce((a, t) => a + t.rawData.length, 0);
    assert.is(int8InFile, int8W, 'the int8 weight bytes in the file');
    // the weights shrink 4x; scales, zero points, int32 biases and the extra nodes' names cost some
    // of that back, which in this tiny model is a lot (mnist-small: 3.4 MB -> 0.9 / 1.0 MB)
    assert.ok(q.bytes.length < 0.7 * floatBytes.length, `${mode}: ${q.bytes.length} bytes vs float32 ${floatBytes.length}`);
  }
  const all = quantizeOnnxBytes(floatBytes, 'dynamic', { exclude: [] });
  assert.equal(all.report.kept, []);
  assert.is(all.report.quantized.length, weights.length, "exclude [] quantizes every weight, as onnxruntime's quantize_dynamic does");
});

test('dynamic with ConvInteger instead of weight-only Convs also matches float32', async () => {
  await ready();
  const q = quantizeOnnxBytes(floatBytes, 'dynamic', { dynamicConv: 'integer' });
  assert.ok(decodeModel(q.bytes).graph.nodes.some((n) => n.opType === 'ConvInteger'));
  const inp = inputs(3);
  const e = errors(await run(q.bytes, inp), await run(floatBytes, inp));
  assert.ok(e.relRms < 0.05 && e.relMax < 0.06, `rms ${(100 * e.relRms).toFixed(2)}%, max ${(100 * e.relMax).toFixed(1)}%`);
});

test('symmetric per-channel weights: max |w| of each channel maps to +-127, rounding error <= scale / 2', () => {
  const w = Float32Array.of(0.5, -1, 0.25, /* ch 1 */ 0, 0, 0, /* ch 2 */ 2e-3, -1e-3, 1.5e-3);
  const { q, scale } = quantizeSymmetric(w, 3, (i) => Math.floor(i / 3));
  assert.equal(Array.from(q.slice(0, 3)), [64, -127, 32]);
  assert.equal(Array.from(q.slice(3, 6)), [0, 0, 0]);
  assert.is(scale[1], 1, 'an all-zero channel gets scale 1, not 0');
  assert.is(q[6], 127);
  for (let i = 0; i < w.length; i++) assert.ok(Math.abs(q[i] * scale[Math.floor(i / 3)] - w[i]) <= scale[Math.floor(i / 3)] / 2 + 1e-9);
  const r = quantizeSymmetric(w, 3, (i) => Math.floor(i / 3), 63);
  assert.is(r.q[1], -63, 'reduceRange: 7-bit');
});

test('Gemm (transB, alpha, beta) becomes MatMulInteger and matches float32', async () => {
  await requireOrt();
  const rng = new Rng(4), K = 6, N = 5, M = 3;
  const W = rng.normals(N * K), C = rng.normals(N), A = rng.normals(M * K);
  const gemm: ModelProto = {
    irVersion: 8, opsetImports: [{ domain: '', version: 17 }], producerName: 't', producerVersion: '', docString: '', metadata: {},
    graph: {
      name: 'g', inputs: [{ name: 'a', elemType: DataType.FLOAT, dims: ['m', K] }], outputs: [{ name: 'y', elemType: DataType.FLOAT, dims: ['m', N] }],
      initializers: [{ name: 'w', dims: [N, K], dataType: DataType.FLOAT, rawData: f32Bytes(W) }, { name: 'c', dims: [N], dataType: DataType.FLOAT, rawData: f32Bytes(C) }],
      nodes: [{ name: 'gemm', opType: 'Gemm', domain: '', inputs: ['a', 'w', 'c'], outputs: ['y'], attributes: [
        { name: 'transB', type: AttrType.INT, i: 1 }, { name: 'alpha', type: AttrType.FLOAT, f: 0.5 }, { name: 'beta', type: AttrType.FLOAT, f: 2 },
      ] }],
    },
  };
  const q = quantizeModel(gemm, 'dynamic');
  assert.equal(q.report.counts, { Conv: 0, MatMul: 0, Gemm: 1 });
  const ort = (await loadOrt()).ort!;
  const go = async (m: ModelProto) => {
    const s = await ort.InferenceSession.create(encodeModel(m), { logSeverityLevel: 3 });
    const r = (await s.run({ a: new ort.Tensor('float32', A, [M, K]) })).y.data as Float32Array;
    await s.release();
    return r;
  };
  const ref = await go(gemm), got = await go(q.model);
  const e = errors(got, ref);
  assert.ok(e.relMax < 0.03, `Gemm: max ${e.max} (${(100 * e.relMax).toFixed(2)}% of max |y|)`);
});

test('bad quantization requests: one DriftlabError line each', async () => {
  await ready();
  throwsDriftlab(() => parseQuantizeMode('int4'), /^unknown quantization 'int4'; choose none, dynamic or static$/);
  assert.is(parseQuantizeMode('none'), null);
  throwsDriftlab(() => quantizeOnnxBytes(floatBytes, 'int4'), /unknown quantization 'int4'/);
  throwsDriftlab(() => quantizeOnnxBytes(floatBytes.subarray(0, 3000), 'dynamic', {}, 'cut.onnx'), /^cut\.onnx is not a valid ONNX model \(.*\); re-create it with 'driftlab export'$/);
  const once8 = quantizeOnnxBytes(floatBytes, 'dynamic').bytes;
  throwsDriftlab(() => quantizeOnnxBytes(once8, 'static', { ranges }, 'q.onnx'), /^q\.onnx is already quantized; quantize the float32 export instead$/);
  throwsDriftlab(() => quantizeOnnxBytes(floatBytes, 'static'), /^static quantization needs calibrated ranges/);
  throwsDriftlab(() => quantizeOnnxBytes(floatBytes, 'static', { ranges: new Map() }), /^static quantization: no calibrated range for .*; calibrate with this very model$/);
  throwsDriftlab(() => quantizeOnnxBytes(floatBytes, 'dynamic', { exclude: ['.'] }), /has no float32 Conv\/MatMul\/Gemm weights to quantize \(all \d+ excluded\)$/);
  throwsDriftlab(() => quantizeOnnxBytes(floatBytes, 'dynamic', { ops: ['Softmax' as any] }), /^cannot quantize op 'Softmax'; choose from Conv, MatMul, Gemm$/);
  throwsDriftlab(() => mnistCalibration({ ...TINY, sampleSize: 32 }, DEFAULT_SCHEDULE), /^static calibration draws MNIST digits \(28x28x1\); this model takes 32x32x1: use --quantize dynamic$/);
  const nan = decodeModel(floatBytes);
  const w = nan.graph.initializers.find((t) => t.name === 'down_blocks.0.resnets.0.conv1.weight')!;
  w.rawData = f32Bytes(new Float32Array(w.rawData.length / 4).fill(NaN));
  throwsDriftlab(() => quantizeModel(nan, 'dynamic'), /^cannot quantize: the model has non-finite weights; check the checkpoint$/);
  await rejectsDriftlab(calibrate(floatModel, [], TINY), /needs at least one calibration batch/);
});

// ---------------------------------------------------------------------------------------------
// the command line
// ---------------------------------------------------------------------------------------------
const result = (code: number | null, out: string, err: string) => ({ code, out, err, lines: err.split('\n').filter((l) => l.startsWith('driftlab:')) });
function cli(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: tmp });
  return result(r.status, r.stdout, r.stderr);
}
/** the same, without waiting: independent commands run side by side (each is mostly node and tfjs start-up) */
function cliAsync(args: string[]): Promise<ReturnType<typeof cli>> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, ...args], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { err += d; });
    c.once('close', (code) => resolve(result(code, out, err)));
  });
}

test('CLI: export --quantize static --verify, then sample from the int8 file; --quantize int4 is one error line', async () => {
  await ready();
  const ckpt = path.join(tmp, 'tiny');
  const params = joinFlat(flatLayout(unetParamSpecs(TINY)), randomParams(TINY, 31));
  await saveCheckpoint(ckpt, { config: { format: CHECKPOINT_FORMAT, model: TINY, schedule: { ...DEFAULT_SCHEDULE }, objective: { ...DEFAULT_OBJECTIVE } }, params, ema: params });
  const file = path.join(tmp, 'tiny-int8.onnx');
  const bad = cliAsync(['export', '--ckpt', ckpt, '--out', path.join(tmp, 'x.onnx'), '--quantize', 'int4']);
  const e = cli(['export', '--ckpt', ckpt, '--out', file, '--quantize', 'static', '--calib-samples', '16', '--verify']);
  assert.is(e.code, 0, e.err);
  assert.match(e.out, /tiny-int8\.onnx: .* MB, \d+ nodes, opset 17, .*, int8 static: \d+ Conv \+ \d+ MatMul weights \(float32 kept: conv_in\.weight, conv_out\.weight\), Conv activations calibrated on 16 noisy MNIST digits; float32 would be/);
  assert.match(e.out, /verified \(static\): max \|int8 - float32\| = [\d.]+, mean [\d.]+, rms [\d.]+% of the output's on 64 noisy MNIST digits/);
  const s = cli(['sample', '--ckpt', ckpt, '--onnx', file, '--n', '2', '--batch', '2', '--steps', '2', '--threads', '1', '--npy', path.join(tmp, 's.npy')]);
  assert.is(s.code, 0, s.err);
  assert.match(s.lines[0], /^driftlab: engine onnxruntime-node .* 1 intra-op thread, int8 static model/);
  const b = await bad;
  assert.is(b.code, 2);
  assert.equal(b.lines, ["driftlab: error: unknown quantization 'int4'; choose none, dynamic or static"], b.err);
  assert.not.ok(fs.existsSync(path.join(tmp, 'x.onnx')));
});

test.run();
