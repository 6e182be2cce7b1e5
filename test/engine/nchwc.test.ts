/**
 * onnxruntime's blocked-layout (NCHWc) kernels in training graphs (engine/onnx-train-ops.ts
 * nchwcBlock): the block probe, which Convs the graph routes through them (on any machine: the
 * graph is built for a given block, whether or not this CPU has the kernels), and, where this
 * onnxruntime has them, single Convs and conv input gradients on them against plain Convs and a
 * float64 direct convolution. Whole-network gradients against tfjs: onnx-train-grad.test.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getPreset } from '../../src/diffusion/presets.js';
import { ONNX_IR_VERSION, ONNX_OPSET } from '../../src/engine/export.js';
import { loadOrt, nchwcBlockSize } from '../../src/engine/onnx-engine.js';
import { decodeModel, encodeModel, NCHWC_DOMAIN } from '../../src/engine/onnx-proto.js';
import type { GVal } from '../../src/engine/onnx-ops.js';
import { OnnxTrainBuilder } from '../../src/engine/onnx-train-ops.js';
import { buildTrainGraph } from '../../src/engine/train-graph.js';
import { Rng } from '../../src/util/rng.js';
import { once, requireOrt } from './helpers.js';

const ready = once(requireOrt);

test('nchwcBlockSize: 0 or a power of two >= 4, the same on every call', async () => {
  await ready();
  const ort = (await loadOrt()).ort!;
  const b = await nchwcBlockSize(ort);
  assert.ok(b === 0 || (b >= 4 && (b & (b - 1)) === 0), `block ${b}`);
  assert.is(await nchwcBlockSize(ort), b);
});

/** a builder's graph as a model that may use the blocked-kernel domain */
const modelOf = (g: OnnxTrainBuilder) => encodeModel({
  irVersion: ONNX_IR_VERSION, opsetImports: [{ domain: '', version: ONNX_OPSET }, { domain: NCHWC_DOMAIN, version: 1 }], producerName: 't', producerVersion: '', docString: '', graph: g.graph('t'), metadata: {},
});

const count = (bytes: Uint8Array, op: string, domain = NCHWC_DOMAIN) => decodeModel(bytes).graph.nodes.filter((n) => n.opType === op && n.domain === domain).length;

test('buildTrainGraph routes exactly the Convs whose channels the block divides (any machine: block given)', () => {
  const c = { ...getPreset('mnist-tiny').model, blockOutChannels: [8, 16] };
  const plain = buildTrainGraph(c, { rows: 2 });
  assert.is(count(plain.bytes, 'ReorderInput'), 0);
  assert.not.ok(decodeModel(plain.bytes).opsetImports.some((o) => o.domain === NCHWC_DOMAIN), 'no blocked ops: no nchwc opset import');
  const b8 = buildTrainGraph(c, { rows: 2, nchwcBlock: 8 });
  const b16 = buildTrainGraph(c, { rows: 2, nchwcBlock: 16 });
  assert.ok(decodeModel(b8.bytes).opsetImports.some((o) => o.domain === NCHWC_DOMAIN && o.version === 1));
  // every blocked Conv has one ReorderInput and one ReorderOutput
  for (const g of [b8, b16]) assert.is(count(g.bytes, 'ReorderInput'), count(g.bytes, 'Conv'));
  for (const g of [b8, b16]) assert.is(count(g.bytes, 'ReorderOutput'), count(g.bytes, 'Conv'));
  // block 8 takes every conv of 8 or 16 channels (all but conv_in's input and conv_out's output, 1 channel);
  // block 16 only the 16 -> 16 ones: strictly fewer, and more than none
  const n8 = count(b8.bytes, 'Conv'), n16 = count(b16.bytes, 'Conv');
  assert.ok(n16 > 0 && n16 < n8, `blocked convs: block 8 ${n8}, block 16 ${n16}`);
  // the blocked graph moves Convs out of the default domain (forward and input gradients)
  assert.ok(count(b8.bytes, 'Conv', '') < count(plain.bytes, 'Conv', ''));
});

/** float64 direct convolution, NCHW input [N,C,H,W], weights in the checkpoint layout [KH,KW,C,O] */
function conv64(x: Float32Array, [N, C, H, W]: number[], w: Float32Array, [KH, KW, , O]: number[], bias: Float32Array | null, stride: number, pad: number): Float64Array {
  const Ho = Math.floor((H + 2 * pad - KH) / stride) + 1, Wo = Math.floor((W + 2 * pad - KW) / stride) + 1;
  const y = new Float64Array(N * O * Ho * Wo);
  for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) {
    let s = bias ? bias[o] : 0;
    for (let c = 0; c < C; c++) for (let a = 0; a < KH; a++) for (let b = 0; b < KW; b++) {
      const h = i * stride + a - pad, q = j * stride + b - pad;
      if (h >= 0 && h < H && q >= 0 && q < W) s += x[((n * C + c) * H + h) * W + q] * w[((a * KW + b) * C + c) * O + o];
    }
    y[((n * O + o) * Ho + i) * Wo + j] = s;
  }
  return y;
}

test('where onnxruntime has the kernels: blocked forward Conv (stride 1 and 2) and input gradient = float64 direct convolution', async () => {
  await ready();
  const ort = (await loadOrt()).ort!;
  const block = await nchwcBlockSize(ort);
  if (!block) { console.log('  (no blocked-layout kernels in this onnxruntime: the structure test above covers the graphs)'); return; }
  const rng = new Rng(5);
  const N = 2, C = 2 * block, O = block, H = 6;
  for (const [stride, pad, k] of [[1, 1, 3], [2, 1, 3], [1, 0, 1]]) {
    const g = new OnnxTrainBuilder();
    g.nchwcBlock = block;
    const NCHW = [0, 3, 1, 2];
    g.input('x', [N, C, H, H]);
    const x: GVal = { id: 'x', shape: [N, H, H, C], perm: NCHW, dtype: 'float32' };
    const w = g.input('w', [k, k, C, O]), b = g.input('b', [O]);
    const y = g.conv2d(x, w, b, stride, pad);
    g.outputPhysical(y, NCHW, 'y');
    const Ho = y.shape[1];
    // input gradient of the same conv (stride 1 only: the flipped Conv) on dy = y's shape
    if (stride === 1) {
      g.input('dy', [N, O, Ho, Ho]);
      const dy: GVal = { id: 'dy', shape: [N, Ho, Ho, O], perm: NCHW, dtype: 'float32' };
      g.convGrad = () => 'flipped-conv';
      g.outputPhysical(g.conv2dGradInput(dy, w, [N, H, H, C], stride, pad), NCHW, 'dx');
    }
    assert.ok(g.usedNchwc);
    const bytes = modelOf(g);
    assert.is(count(bytes, 'Conv'), stride === 1 ? 2 : 1, 'every conv here runs on the blocked kernels');
    const xs = rng.normals(N * C * H * H), ws = rng.normals(k * k * C * O), bs = rng.normals(O), dys = rng.normals(N * O * Ho * Ho);
    const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
      x: new ort.Tensor('float32', xs, [N, C, H, H]), w: new ort.Tensor('float32', ws, [k, k, C, O]), b: new ort.Tensor('float32', bs, [O]),
    };
    if (stride === 1) feeds.dy = new ort.Tensor('float32', dys, [N, O, Ho, Ho]);
    const r = await s.run(feeds);
    const close = (got: Float32Array, ref: Float64Array, what: string) => {
      let d = 0, n = 0;
      for (let i = 0; i < ref.length; i++) { d += (got[i] - ref[i]) ** 2; n += ref[i] ** 2; }
      assert.is(got.length, ref.length, what);
      assert.ok(Math.sqrt(d / n) < 1e-6, `${what}: relative error ${Math.sqrt(d / n)}`);
    };
    close(r.y.data as Float32Array, conv64(xs, [N, C, H, H], ws, [k, k, C, O], bs, stride, pad), `forward ${k}x${k} stride ${stride}`);
    if (stride === 1) {
      // dx = correlation of dy with the flipped, transposed weights: a direct conv of dy with w' [KH,KW,O,C]
      const wf = new Float32Array(ws.length);
      for (let a = 0; a < k; a++) for (let bb = 0; bb < k; bb++) for (let c = 0; c < C; c++) for (let o = 0; o < O; o++) {
        wf[(((k - 1 - a) * k + (k - 1 - bb)) * O + o) * C + c] = ws[((a * k + bb) * C + c) * O + o];
      }
      close(r.dx.data as Float32Array, conv64(dys, [N, O, Ho, Ho], wf, [k, k, O, C], null, 1, k - 1 - pad), `input gradient ${k}x${k}`);
    }
    await s.release();
  }
});

test('where onnxruntime has the kernels: the swapped-nchwc weight gradient (stride 1 and 2) = the swapped Conv and taps', async () => {
  await ready();
  const ort = (await loadOrt()).ort!;
  const block = await nchwcBlockSize(ort);
  if (!block) { console.log('  (no blocked-layout kernels in this onnxruntime)'); return; }
  const rng = new Rng(9);
  const N = block, C = 3, O = block, H = 6;
  for (const stride of [1, 2]) {
    const Ho = Math.floor((H + 2 - 3) / stride) + 1;
    const xs = rng.normals(N * C * H * H), dys = rng.normals(N * O * Ho * Ho);
    const outs: Float32Array[] = [];
    for (const f of ['swapped-conv', 'swapped-nchwc', 'im2col-nhwc'] as const) {
      const g = new OnnxTrainBuilder();
      g.nchwcBlock = block;
      g.convGrad = () => f;
      const NCHW = [0, 3, 1, 2];
      g.input('x', [N, C, H, H]);
      g.input('dy', [N, O, Ho, Ho]);
      const dw = g.conv2dGradWeight({ id: 'x', shape: [N, H, H, C], perm: NCHW, dtype: 'float32' }, { id: 'dy', shape: [N, Ho, Ho, O], perm: NCHW, dtype: 'float32' }, [3, 3, C, O], stride, 1);
      g.outputPhysical(dw, [0, 1, 2, 3], 'dw');
      assert.is(g.usedNchwc, f === 'swapped-nchwc');
      const bytes = modelOf(g);
      const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
      outs.push((await s.run({ x: new ort.Tensor('float32', xs, [N, C, H, H]), dy: new ort.Tensor('float32', dys, [N, O, Ho, Ho]) })).dw.data as Float32Array);
      await s.release();
    }
    for (const k of [1, 2]) {
      let d = 0, n = 0;
      for (let i = 0; i < outs[0].length; i++) { d += (outs[k][i] - outs[0][i]) ** 2; n += outs[0][i] ** 2; }
      assert.ok(n > 0 && Math.sqrt(d / n) < 1e-5, `stride ${stride}, formulation ${k}: relative difference ${Math.sqrt(d / n)}`);
    }
  }
});

test.run();
