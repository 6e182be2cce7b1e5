/**
 * Gradient kernels for conv2d on the wasm backend.
 *
 * tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter, and its Conv2DBackpropInput is a naive
 * loop (~3 GFLOP/s against ~30 for the XNNPACK forward conv). Both gradients are rewritten
 * here as *forward* convolutions, so they run through XNNPACK:
 *
 *   dW[kh,kw,ci,co] = sum_{n,oh,ow} xpad[n, oh*s+kh, ow*s+kw, ci] * dy[n,oh,ow,co]
 *     = conv2d(X' = xpad^T [Cin,Hp,Wp,N],  F' = dy^T [OH,OW,N,Cout],  stride 1, dilation s)
 *       -> [Cin,KH,KW,Cout], transposed back to [KH,KW,Cin,Cout].
 *
 *   dx = conv2d(dilate_s(dy), rot180(W) with in/out swapped, stride 1, padding KH-1-padTop ...)
 *
 * Kernels are called through the registry (never through tf ops) so nothing is taped, and
 * every intermediate TensorInfo is released with backend.disposeData.
 */
import * as tf from '@tensorflow/tfjs';

type Info = tf.TensorInfo;
type KernelArgs = { inputs: Record<string, Info>; backend: any; attrs: Record<string, any> };

function run(name: string, backend: any, inputs: Record<string, Info>, attrs: Record<string, any>): Info {
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`wasm kernel ${name} is not registered`);
  return k.kernelFunc({ inputs, backend, attrs } as any) as Info;
}

function convInfoOf(xShape: number[], wShape: number[], attrs: Record<string, any>) {
  if (attrs.dataFormat && attrs.dataFormat !== 'NHWC') throw new Error('driftlab wasm conv grads: only NHWC');
  const dil = attrs.dilations ?? 1;
  const dils = Array.isArray(dil) ? dil : [dil, dil];
  if (dils[0] !== 1 || dils[1] !== 1) throw new Error('driftlab wasm conv grads: dilated convs are not supported');
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    wShape as [number, number, number, number],
    attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast',
  );
}

/** dW for y = conv2d(x, W): inputs {x, dy}, attrs {strides, pad, filterShape, ...}. */
export function conv2DBackpropFilterWasm({ inputs, backend, attrs }: KernelArgs): Info {
  const { x, dy } = inputs;
  const filterShape = attrs.filterShape as number[];
  const ci = convInfoOf(x.shape, filterShape, attrs);
  const [N, H, W, Cin] = x.shape;
  const [KH, KW, , Cout] = filterShape;
  const [OH, OW] = [ci.outHeight, ci.outWidth];
  const [sh, sw] = [ci.strideHeight, ci.strideWidth];
  const { top, left } = ci.padInfo;
  const tmp: Info[] = [];
  try {
    // 1x1 stride-1 unpadded: dW = x^T dy as one matmul over N*H*W rows.
    if (KH === 1 && KW === 1 && sh === 1 && sw === 1 && top === 0 && left === 0) {
      const x2 = run('Reshape', backend, { x }, { shape: [1, N * H * W, Cin] }); tmp.push(x2);
      const d2 = run('Reshape', backend, { x: dy }, { shape: [1, N * OH * OW, Cout] }); tmp.push(d2);
      const m = run('BatchMatMul', backend, { a: x2, b: d2 }, { transposeA: true, transposeB: false }); tmp.push(m);
      return run('Reshape', backend, { x: m }, { shape: [1, 1, Cin, Cout] });
    }
    // Rows/cols of the padded input that the forward conv touched: (O-1)*s + K.
    const needH = (OH - 1) * sh + KH;
    const needW = (OW - 1) * sw + KW;
    let bottom = needH - H - top;
    let right = needW - W - left;
    const xt = run('Transpose', backend, { x }, { perm: [3, 1, 2, 0] }); tmp.push(xt); // [Cin,H,W,N]
    const f = run('Transpose', backend, { x: dy }, { perm: [1, 2, 0, 3] }); tmp.push(f); // [OH,OW,N,Cout]
    let xin = xt;
    if (bottom < 0 || right < 0) {
      // The forward conv never read the last rows/cols: crop them.
      xin = run('Slice', backend, { x: xt }, { begin: [0, 0, 0, 0], size: [Cin, H + Math.min(bottom, 0), W + Math.min(right, 0), N] });
      tmp.push(xin);
      bottom = Math.max(bottom, 0);
      right = Math.max(right, 0);
    }
    const pad = [[0, 0], [top, bottom], [left, right], [0, 0]];
    const g = run('Conv2D', backend, { x: xin, filter: f }, {
      strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [sh, sw], dimRoundingMode: undefined,
    }); tmp.push(g); // [Cin,KH,KW,Cout]
    return run('Transpose', backend, { x: g }, { perm: [1, 2, 0, 3] });
  } finally {
    for (const t of tmp) backend.disposeData(t.dataId);
  }
}

/** dx for y = conv2d(x, W): inputs {dy, filter}, attrs {inputShape, strides, pad, ...}. */
export function conv2DBackpropInputWasm({ inputs, backend, attrs }: KernelArgs): Info {
  const { dy, filter } = inputs;
  const inputShape = attrs.inputShape as number[];
  const ci = convInfoOf(inputShape, filter.shape, attrs);
  const [N, H, W, Cin] = inputShape;
  const [KH, KW, , Cout] = filter.shape;
  const [OH, OW] = [ci.outHeight, ci.outWidth];
  const [sh, sw] = [ci.strideHeight, ci.strideWidth];
  const { top, left } = ci.padInfo;
  const tmp: Info[] = [];
  try {
    // rot180 + swap in/out: W'[kh,kw,co,ci] = W[KH-1-kh, KW-1-kw, ci, co]
    let wr = filter;
    if (KH > 1 || KW > 1) { wr = run('Reverse', backend, { x: filter }, { dims: [0, 1] }); tmp.push(wr); }
    const wt = run('Transpose', backend, { x: wr }, { perm: [0, 1, 3, 2] }); tmp.push(wt);
    // Dilate dy by the stride: [N,OH,OW,C] -> [N,OH*s,OW*s,C] with zeros between rows/cols.
    let d = dy;
    let DH = OH, DW = OW;
    if (sh > 1 || sw > 1) {
      const r = run('Reshape', backend, { x: dy }, { shape: [N * OH, 1, OW, 1, Cout] }); tmp.push(r);
      const p = run('PadV2', backend, { x: r }, {
        paddings: [[0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]], constantValue: 0,
      }); tmp.push(p);
      d = run('Reshape', backend, { x: p }, { shape: [N, OH * sh, OW * sw, Cout] }); tmp.push(d);
      DH = OH * sh; DW = OW * sw;
    }
    // Output row h receives dilated dy rows o = h + top - kh. With padding wider than the
    // kernel reach (top > KH-1), the first rows of dilated dy feed no output: crop them.
    let padTop = KH - 1 - top, padLeft = KW - 1 - left;
    const cropTop = Math.max(0, -padTop), cropLeft = Math.max(0, -padLeft);
    padTop = Math.max(padTop, 0);
    padLeft = Math.max(padLeft, 0);
    let padBottom = H + KH - 1 - (DH - cropTop) - padTop;
    let padRight = W + KW - 1 - (DW - cropLeft) - padLeft;
    if (padBottom < 0 || padRight < 0 || cropTop > 0 || cropLeft > 0) {
      // ...and trailing zero rows of the dilation that no output needs.
      const c = run('Slice', backend, { x: d }, {
        begin: [0, cropTop, cropLeft, 0],
        size: [N, DH - cropTop + Math.min(padBottom, 0), DW - cropLeft + Math.min(padRight, 0), Cout],
      }); tmp.push(c);
      d = c;
      padBottom = Math.max(padBottom, 0);
      padRight = Math.max(padRight, 0);
    }
    return run('Conv2D', backend, { x: d, filter: wt }, {
      strides: [1, 1], pad: [[0, 0], [padTop, padBottom], [padLeft, padRight], [0, 0]],
      dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined,
    });
  } finally {
    for (const t of tmp) backend.disposeData(t.dataId);
  }
}

let registered = false;
/** Register (or replace) the conv gradient kernels on the wasm backend. Idempotent. */
export function registerWasmConvGrads(): void {
  if (registered) return;
  for (const [kernelName, kernelFunc] of [
    ['Conv2DBackpropFilter', conv2DBackpropFilterWasm],
    ['Conv2DBackpropInput', conv2DBackpropInputWasm],
  ] as const) {
    if (tf.getKernel(kernelName, 'wasm')) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: kernelFunc as any });
  }
  registered = true;
}
