import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../src/util/rng.js';
import { backendDataIds, ensureWasm, relMaxErr, useBackend } from '../helpers/backend.js';

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
interface Case { N: number; H: number; W: number; Cin: number; Cout: number; KH: number; KW: number; strides: [number, number]; pad: Pad }

const P1: Pad = [[0, 0], [1, 1], [1, 1], [0, 0]];
const cases: Case[] = [];
for (const s of [1, 2]) {
  for (const k of [1, 3]) {
    for (const pad of (k === 3 ? ['same', P1] : ['same']) as Pad[]) {
      for (const [H, W] of [[7, 7], [9, 9], [8, 8]]) cases.push({ N: 2, H, W, Cin: 3, Cout: 5, KH: k, KW: k, strides: [s, s], pad });
    }
  }
}
// 'valid' (the forward conv never reads the last rows at stride 2 on 8x8), non-square shapes,
// uneven strides, asymmetric explicit padding and a 1x1 conv with explicit padding.
cases.push(
  { N: 2, H: 8, W: 8, Cin: 3, Cout: 5, KH: 3, KW: 3, strides: [2, 2], pad: 'valid' },
  { N: 2, H: 9, W: 9, Cin: 3, Cout: 5, KH: 3, KW: 3, strides: [1, 1], pad: 'valid' },
  { N: 1, H: 7, W: 10, Cin: 4, Cout: 2, KH: 3, KW: 1, strides: [1, 2], pad: 'same' },
  { N: 2, H: 6, W: 9, Cin: 2, Cout: 3, KH: 3, KW: 3, strides: [2, 1], pad: [[0, 0], [0, 2], [1, 0], [0, 0]] },
  { N: 1, H: 6, W: 7, Cin: 3, Cout: 2, KH: 1, KW: 3, strides: [1, 1], pad: 'valid' },
  { N: 1, H: 11, W: 11, Cin: 2, Cout: 3, KH: 5, KW: 5, strides: [2, 2], pad: 'same' },
  // padding larger than kernel-1 (a 1x1 conv with explicit padding 1): legal in tfjs and handled
  // by the cpu backend; driftlab's own layers never build it (pad = (k-1)/2).
  { N: 1, H: 5, W: 5, Cin: 3, Cout: 4, KH: 1, KW: 1, strides: [1, 1], pad: P1 },
);

function describe(c: Case): string {
  return `N${c.N} ${c.H}x${c.W}x${c.Cin} k${c.KH}x${c.KW}->${c.Cout} s${c.strides} pad ${JSON.stringify(c.pad)}`;
}

function outHW(c: Case): [number, number] {
  const ci = tf.backend_util.computeConv2DInfo([c.N, c.H, c.W, c.Cin], [c.KH, c.KW, c.Cin, c.Cout], c.strides, 1, c.pad as any);
  return [ci.outHeight, ci.outWidth];
}

function data(c: Case, seed: number) {
  const rng = new Rng(seed);
  const [OH, OW] = outHW(c);
  return {
    x: rng.normals(c.N * c.H * c.W * c.Cin),
    w: rng.normals(c.KH * c.KW * c.Cin * c.Cout),
    dy: rng.normals(c.N * OH * OW * c.Cout),
    OH, OW,
  };
}

/** grads of sum(conv2d(x, w) * dy) w.r.t. x and w on the current backend, through tf.grads. */
function gradsViaAutodiff(c: Case, d: ReturnType<typeof data>): { dx: Float32Array; dw: Float32Array } {
  return tf.tidy(() => {
    const x = tf.tensor4d(d.x, [c.N, c.H, c.W, c.Cin]);
    const w = tf.tensor4d(d.w, [c.KH, c.KW, c.Cin, c.Cout]);
    const dy = tf.tensor4d(d.dy, [c.N, d.OH, d.OW, c.Cout]);
    const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.strides, c.pad as any), dy));
    const [gx, gw] = tf.grads(f)([x, w]);
    return { dx: gx.dataSync() as Float32Array, dw: gw.dataSync() as Float32Array };
  });
}

/** The two gradient kernels called directly through the engine. */
function gradsViaKernels(c: Case, d: ReturnType<typeof data>): { dx: Float32Array; dw: Float32Array } {
  return tf.tidy(() => {
    const x = tf.tensor4d(d.x, [c.N, c.H, c.W, c.Cin]);
    const filter = tf.tensor4d(d.w, [c.KH, c.KW, c.Cin, c.Cout]);
    const dy = tf.tensor4d(d.dy, [c.N, d.OH, d.OW, c.Cout]);
    const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
      strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: [c.KH, c.KW, c.Cin, c.Cout],
    } as any) as tf.Tensor;
    const dx = tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, {
      inputShape: [c.N, c.H, c.W, c.Cin], strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined,
    } as any) as tf.Tensor;
    assert.equal(dw.shape, [c.KH, c.KW, c.Cin, c.Cout], 'dW shape');
    assert.equal(dx.shape, [c.N, c.H, c.W, c.Cin], 'dx shape');
    return { dx: dx.dataSync() as Float32Array, dw: dw.dataSync() as Float32Array };
  });
}

/** Float64 loops straight from the definition of the convolution (an oracle independent of tfjs). */
function gradsByDefinition(c: Case, d: ReturnType<typeof data>): { dx: Float64Array; dw: Float64Array } {
  const ci = tf.backend_util.computeConv2DInfo([c.N, c.H, c.W, c.Cin], [c.KH, c.KW, c.Cin, c.Cout], c.strides, 1, c.pad as any);
  const { top, left } = ci.padInfo;
  const dx = new Float64Array(d.x.length), dw = new Float64Array(d.w.length);
  for (let n = 0; n < c.N; n++) for (let oh = 0; oh < d.OH; oh++) for (let ow = 0; ow < d.OW; ow++) {
    for (let kh = 0; kh < c.KH; kh++) for (let kw = 0; kw < c.KW; kw++) {
      const h = oh * c.strides[0] + kh - top, w = ow * c.strides[1] + kw - left;
      if (h < 0 || h >= c.H || w < 0 || w >= c.W) continue;
      for (let i = 0; i < c.Cin; i++) for (let o = 0; o < c.Cout; o++) {
        const g = d.dy[((n * d.OH + oh) * d.OW + ow) * c.Cout + o];
        const xi = ((n * c.H + h) * c.W + w) * c.Cin + i;
        const wi = ((kh * c.KW + kw) * c.Cin + i) * c.Cout + o;
        dw[wi] += d.x[xi] * g;
        dx[xi] += d.w[wi] * g;
      }
    }
  }
  return { dx, dw };
}

test.before(async () => { await ensureWasm(); });

test('the driftlab kernels are the ones registered on wasm', async () => {
  await ensureWasm();
  const { conv2DBackpropFilterWasm, conv2DBackpropInputWasm } = await import('../../src/kernels/wasm-conv-grads.js');
  assert.is(tf.getKernel('Conv2DBackpropFilter', 'wasm')?.kernelFunc, conv2DBackpropFilterWasm as any);
  assert.is(tf.getKernel('Conv2DBackpropInput', 'wasm')?.kernelFunc, conv2DBackpropInputWasm as any);
});

cases.forEach((c, idx) => {
  test(`conv2d grads wasm == cpu == float64 definition: ${describe(c)}`, async () => {
    const d = data(c, 100 + idx);
    const def = gradsByDefinition(c, d);

    await useBackend('cpu');
    const cpuAuto = gradsViaAutodiff(c, d);
    const cpuKern = gradsViaKernels(c, d);

    await useBackend('wasm');
    const n0 = tf.memory().numTensors, ids0 = backendDataIds();
    const wasmAuto = gradsViaAutodiff(c, d);
    const wasmKern = gradsViaKernels(c, d);
    assert.is(tf.memory().numTensors, n0, 'wasm path leaks tensors');
    assert.is(backendDataIds(), ids0, 'wasm path leaks backend buffers');

    const tol = 1e-4;
    const pairs: [string, ArrayLike<number>, ArrayLike<number>][] = [
      ['cpu autodiff dx vs definition', cpuAuto.dx, def.dx], ['cpu autodiff dW vs definition', cpuAuto.dw, def.dw],
      ['wasm autodiff dx vs cpu', wasmAuto.dx, cpuAuto.dx], ['wasm autodiff dW vs cpu', wasmAuto.dw, cpuAuto.dw],
      ['wasm kernel dx vs cpu kernel', wasmKern.dx, cpuKern.dx], ['wasm kernel dW vs cpu kernel', wasmKern.dw, cpuKern.dw],
      ['wasm kernel dx vs definition', wasmKern.dx, def.dx], ['wasm kernel dW vs definition', wasmKern.dw, def.dw],
    ];
    for (const [what, got, ref] of pairs) {
      const e = relMaxErr(got, ref);
      assert.ok(e < tol, `${describe(c)}: ${what}: rel err ${e}`);
    }
  });
});

test('no leak across many wasm training-style grad calls', async () => {
  await useBackend('wasm');
  const c = cases[3];
  const d = data(c, 7);
  gradsViaAutodiff(c, d); // warm up (kernel-side caches)
  const n0 = tf.memory().numTensors, ids0 = backendDataIds(), bytes0 = tf.memory().numBytes;
  for (let i = 0; i < 5; i++) { gradsViaAutodiff(c, d); gradsViaKernels(c, d); }
  assert.is(tf.memory().numTensors, n0);
  assert.is(backendDataIds(), ids0);
  assert.is(tf.memory().numBytes, bytes0);
});

test.run();
