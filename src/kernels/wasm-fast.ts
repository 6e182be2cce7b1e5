/**
 * Faster formulations of two wasm kernels that the U-Net's backward pass leans on.
 * (Measured in bench/: see docs/BENCHMARKS.md.)
 *
 * - BatchMatMul with transposeA/transposeB runs a scalar loop in tfjs-backend-wasm 4.22; an
 *   explicit Transpose followed by the non-transposed product runs through XNNPACK
 *   (dW = x^T dy of a [3136,64] linear: ~12 ms -> ~1 ms).
 * - Sum over leading axes (bias gradients: sum of [N,H,W,C] over N,H,W) transposes first; as a
 *   product ones[1,M] @ x[M,C] it is ~30x faster.
 * Both wrap the original kernels, which stay the fallback for every other case.
 */
import * as tf from '@tensorflow/tfjs';

type Info = tf.TensorInfo;
type KernelArgs = { inputs: Record<string, Info>; backend: any; attrs: Record<string, any> };
type KernelFn = (args: KernelArgs) => Info;

function kernel(name: string): KernelFn {
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`wasm kernel ${name} is not registered`);
  return k.kernelFunc as unknown as KernelFn;
}

function replace(name: string, make: (orig: KernelFn) => KernelFn): void {
  const cfg = tf.getKernel(name, 'wasm')!;
  const orig = cfg.kernelFunc as unknown as KernelFn;
  tf.unregisterKernel(name, 'wasm');
  // keep setupFunc: wasm kernels bind their C entry points there when the backend starts
  tf.registerKernel({ ...cfg, kernelFunc: make(orig) as any });
}

function transposeLast2(x: Info, backend: any): Info {
  const r = x.shape.length;
  const perm = [...Array(r - 2).keys(), r - 1, r - 2];
  return kernel('Transpose')({ inputs: { x }, backend, attrs: { perm } });
}

const matMulNoTranspose = (orig: KernelFn): KernelFn => ({ inputs, backend, attrs }) => {
  if (!attrs.transposeA && !attrs.transposeB) return orig({ inputs, backend, attrs });
  const tmp: Info[] = [];
  try {
    let { a, b } = inputs;
    if (attrs.transposeA) { a = transposeLast2(a, backend); tmp.push(a); }
    if (attrs.transposeB) { b = transposeLast2(b, backend); tmp.push(b); }
    return orig({ inputs: { a, b }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
  } finally {
    for (const t of tmp) backend.disposeData(t.dataId);
  }
};

const sumLeadingAsMatMul = (orig: KernelFn): KernelFn => ({ inputs, backend, attrs }) => {
  const { x } = inputs;
  const rank = x.shape.length;
  const axes = (Array.isArray(attrs.axis) ? attrs.axis : [attrs.axis]).map((a: number) => (a < 0 ? a + rank : a)).sort((p: number, q: number) => p - q);
  const isPrefix = axes.length > 0 && axes.length < rank && axes.every((a: number, i: number) => a === i);
  if (!isPrefix || x.dtype !== 'float32') return orig({ inputs, backend, attrs });
  const M = x.shape.slice(0, axes.length).reduce((p, q) => p * q, 1);
  const restShape = x.shape.slice(axes.length);
  const R = restShape.reduce((p, q) => p * q, 1);
  if (M < 64) return orig({ inputs, backend, attrs });
  const tmp: Info[] = [];
  try {
    const ones = kernel('Fill')({ inputs: {}, backend, attrs: { shape: [1, 1, M], value: 1, dtype: 'float32' } }); tmp.push(ones);
    const x3 = kernel('Reshape')({ inputs: { x }, backend, attrs: { shape: [1, M, R] } }); tmp.push(x3);
    const s = kernel('BatchMatMul')({ inputs: { a: ones, b: x3 }, backend, attrs: { transposeA: false, transposeB: false } }); tmp.push(s);
    const shape = attrs.keepDims ? [...axes.map(() => 1), ...restShape] : restShape;
    return kernel('Reshape')({ inputs: { x: s }, backend, attrs: { shape } });
  } finally {
    for (const t of tmp) backend.disposeData(t.dataId);
  }
};

let registered = false;
export function registerWasmFastKernels(): void {
  if (registered) return;
  replace('BatchMatMul', matMulNoTranspose);
  replace('Sum', sumLeadingAsMatMul);
  registered = true;
}
