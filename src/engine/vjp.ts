/**
 * Reverse-mode rules for every op of engine/ops.ts, one entry per op: its forward (a call of the
 * Ops method it stands for) beside its vector-Jacobian product. A rule's VJP is written in the
 * same generic ops plus the few primitives of GradOps below, so it runs wherever the forward
 * runs (engine/onnx-train-ops.ts emits it as standard ONNX nodes). Tape (engine/tape.ts) records
 * rules while the unchanged network code (diffusion/unet.ts, video/st-unet.ts) runs over it.
 *
 * Adding an op to Ops: add its rule here and a one-line method to Tape.
 *
 * Shapes are static (training graphs are built for one batch size): no negative dimensions.
 */
import type { Ops } from './ops.js';
import { groupMean, groupNormParts } from '../diffusion/layers.js';

/** What VJP rules need beyond the forward ops. */
export interface GradOps<T> extends Ops<T> {
  /** sum over the given axes */
  sum(x: T, axes: number[], keepDims?: boolean): T;
  /** d conv2d / dx: dy [B,Ho,Wo,Cout], w [KH,KW,Cin,Cout] -> [B,H,W,Cin] (xShape) */
  conv2dGradInput(dy: T, w: T, xShape: number[], stride: number, pad: number): T;
  /** d conv2d / dw: x [B,H,W,Cin], dy [B,Ho,Wo,Cout] -> [KH,KW,Cin,Cout] (wShape) */
  conv2dGradWeight(x: T, dy: T, wShape: number[], stride: number, pad: number): T;
  /** labels [B] int -> [B,depth] float one-hot */
  oneHot(labels: T, depth: number): T;
  /** sum of each 2x2 spatial block: [B,2H,2W,C] -> [B,H,W,C] (the VJP of resizeNearest2x) */
  sumPool2x2(x: T): T;
}

/** xs: the op's tensor inputs (undefined: an absent optional input); a: its non-tensor arguments. */
export interface Rule<A> {
  forward<T>(o: GradOps<T>, xs: (T | undefined)[], a: A): T;
  /** input cotangents (null: none); need[i] says which inputs want one */
  vjp<T>(o: GradOps<T>, dy: T, xs: (T | undefined)[], y: T, a: A, need: boolean[]): (T | null)[];
}

const iota = (n: number) => [...Array(n).keys()];

/** Sum dy down to `shape` (undo numpy broadcasting: leading axes and size-1 axes). */
export function sumTo<T>(o: GradOps<T>, dy: T, shape: number[]): T {
  const ds = o.shape(dy);
  if (ds.length === shape.length && ds.every((d, i) => d === shape[i])) return dy;
  const padded = [...Array(ds.length - shape.length).fill(1), ...shape];
  const axes = iota(ds.length).filter((i) => padded[i] === 1 && ds[i] !== 1);
  const s = axes.length ? o.sum(dy, axes, true) : dy;
  return o.reshape(s, shape);
}

const neg = <T>(o: GradOps<T>, x: T) => o.mul(x, -1);
const swapLast = <T>(o: GradOps<T>, x: T) => { const r = o.shape(x).length; return o.transpose(x, [...iota(r - 2), r - 1, r - 2]); };
const X = <T>(xs: (T | undefined)[], i: number): T => xs[i] as T;
const unary = (f: <T>(o: GradOps<T>, x: T) => T, d: <T>(o: GradOps<T>, dy: T, x: T, y: T) => T): Rule<null> => ({
  forward: (o, xs) => f(o, X(xs, 0)),
  vjp: (o, dy, xs, y) => [d(o, dy, X(xs, 0), y)],
});

export const RULES = {
  conv2d: {
    forward: (o, xs, a) => o.conv2d(X(xs, 0), X(xs, 1), X(xs, 2), a.stride, a.pad),
    vjp: (o, dy, xs, _y, a, need) => {
      const [x, w, b] = [X(xs, 0), X(xs, 1), X(xs, 2)];
      return [
        need[0] ? o.conv2dGradInput(dy, w, o.shape(x), a.stride, a.pad) : null,
        need[1] ? o.conv2dGradWeight(x, dy, o.shape(w), a.stride, a.pad) : null,
        need[2] ? o.sum(dy, [0, 1, 2]) : null, // [Cout]
      ];
    },
  } as Rule<{ stride: number; pad: number }>,

  matMul: {
    forward: (o, xs, a) => o.matMul(X(xs, 0), X(xs, 1), a.transposeB),
    vjp: (o, dy, xs, _y, a, need) => {
      const [x, w] = [X(xs, 0), X(xs, 1)];
      // y = x w (w [..,K,N]) or x w^T (w [..,N,K])
      const dx = need[0] ? o.matMul(dy, w, !a.transposeB) : null;
      const dw = need[1] ? (a.transposeB ? o.matMul(swapLast(o, dy), x) : o.matMul(swapLast(o, x), dy)) : null;
      return [dx && sumTo(o, dx, o.shape(x)), dw && sumTo(o, dw, o.shape(w))];
    },
  } as Rule<{ transposeB: boolean }>,

  add: {
    forward: (o, xs) => o.add(X(xs, 0), X(xs, 1)),
    vjp: (o, dy, xs, _y, _a, need) => [need[0] ? sumTo(o, dy, o.shape(X(xs, 0))) : null, need[1] ? sumTo(o, dy, o.shape(X(xs, 1))) : null],
  } as Rule<null>,
  sub: {
    forward: (o, xs) => o.sub(X(xs, 0), X(xs, 1)),
    vjp: (o, dy, xs, _y, _a, need) => [need[0] ? sumTo(o, dy, o.shape(X(xs, 0))) : null, need[1] ? sumTo(o, neg(o, dy), o.shape(X(xs, 1))) : null],
  } as Rule<null>,
  mul: {
    forward: (o, xs) => o.mul(X(xs, 0), X(xs, 1)),
    vjp: (o, dy, xs, _y, _a, need) => {
      const [p, q] = [X(xs, 0), X(xs, 1)];
      return [need[0] ? sumTo(o, o.mul(dy, q), o.shape(p)) : null, need[1] ? sumTo(o, o.mul(dy, p), o.shape(q)) : null];
    },
  } as Rule<null>,
  addScalar: { forward: (o, xs, a) => o.add(X(xs, 0), a), vjp: (_o, dy) => [dy] } as Rule<number>,
  mulScalar: { forward: (o, xs, a) => o.mul(X(xs, 0), a), vjp: (o, dy, _xs, _y, a) => [o.mul(dy, a)] } as Rule<number>,

  sigmoid: unary((o, x) => o.sigmoid(x), (o, dy, _x, y) => o.mul(dy, o.sub(y, o.square(y)))), // s (1 - s)
  sin: unary((o, x) => o.sin(x), (o, dy, x) => o.mul(dy, o.cos(x))),
  cos: unary((o, x) => o.cos(x), (o, dy, x) => neg(o, o.mul(dy, o.sin(x)))),
  square: unary((o, x) => o.square(x), (o, dy, x) => o.mul(o.mul(dy, x), 2)),
  rsqrt: unary((o, x) => o.rsqrt(x), (o, dy, _x, y) => o.mul(o.mul(dy, o.mul(o.square(y), y)), -0.5)), // -x^-3/2 / 2

  reshape: {
    forward: (o, xs, a) => o.reshape(X(xs, 0), a),
    vjp: (o, dy, xs) => [o.reshape(dy, o.shape(X(xs, 0)))],
  } as Rule<number[]>,
  transpose: {
    forward: (o, xs, a) => o.transpose(X(xs, 0), a),
    vjp: (o, dy, _xs, _y, a) => [o.transpose(dy, iota(a.length).map((i) => a.indexOf(i)))],
  } as Rule<number[]>,
  concat: {
    forward: (o, xs, a) => o.concat(xs as any[], a),
    vjp: (o, dy, xs, _y, axis, need) => {
      let start = 0;
      return xs.map((x, i) => {
        const n = o.shape(x!)[axis];
        start += n;
        return need[i] ? o.slice(dy, axis, start - n, n) : null;
      });
    },
  } as Rule<number>,
  slice: {
    forward: (o, xs, a) => o.slice(X(xs, 0), a.axis, a.begin, a.size),
    vjp: (o, dy, xs, _y, a) => { // dy back in place, zeros before and after along the axis
      const shape = o.shape(X(xs, 0));
      const zeros = (n: number) => o.broadcastTo(o.constant(new Float32Array(1), shape.map(() => 1)), shape.map((d, i) => (i === a.axis ? n : d)));
      const after = shape[a.axis] - a.begin - a.size;
      const parts = [...(a.begin > 0 ? [zeros(a.begin)] : []), dy, ...(after > 0 ? [zeros(after)] : [])];
      return [parts.length > 1 ? o.concat(parts, a.axis) : dy];
    },
  } as Rule<{ axis: number; begin: number; size: number }>,
  softmax: {
    forward: (o, xs) => o.softmax(X(xs, 0)),
    vjp: (o, dy, _xs, y) => { // y (dy - sum(dy y))
      const r = o.shape(y).length;
      return [o.mul(y, o.sub(dy, o.sum(o.mul(dy, y), [r - 1], true)))];
    },
  } as Rule<null>,
  mean: {
    forward: (o, xs, a) => o.mean(X(xs, 0), a.axis, a.keepDims),
    vjp: (o, dy, xs, _y, a) => {
      const shape = o.shape(X(xs, 0));
      const kept = shape.map((d, i) => (i === a.axis ? 1 : d));
      return [o.broadcastTo(o.mul(o.reshape(dy, kept), 1 / shape[a.axis]), shape)];
    },
  } as Rule<{ axis: number; keepDims: boolean }>,
  broadcastTo: {
    forward: (o, xs, a) => o.broadcastTo(X(xs, 0), a),
    vjp: (o, dy, xs) => [sumTo(o, dy, o.shape(X(xs, 0)))],
  } as Rule<number[]>,
  resizeNearest2x: {
    forward: (o, xs) => o.resizeNearest2x(X(xs, 0)),
    vjp: (o, dy) => [o.sumPool2x2(dy)], // each input pixel feeds a 2x2 block: sum the blocks
  } as Rule<null>,
  embedding: {
    forward: (o, xs, batch) => o.embedding(X(xs, 0), xs[1], batch),
    vjp: (o, dy, xs, _y, _batch, need) => {
      const table = X(xs, 0);
      const labels = xs[1];
      if (!need[0]) return [null, null];
      if (!labels) { // every row is the null class (the last): all of dy goes there
        const [K, E] = o.shape(table);
        const last = o.sum(dy, [0], true); // [1,E]
        return [K === 1 ? last : o.concat([o.constant(new Float32Array((K - 1) * E), [K - 1, E]), last], 0), null];
      }
      return [o.matMul(swapLast(o, o.oneHot(labels, o.shape(table)[0])), dy), null]; // onehot^T dy: [K,E]
    },
  } as Rule<number>,
  groupNorm: {
    // the forward of diffusion/layers.ts (its intermediates kept for the VJP)
    forward: (o, xs, a) => { const r = groupNormParts(o, X(xs, 0), X(xs, 1), X(xs, 2), a.groups, a.eps); a.saved = r; return r.y; },
    /**
     * Closed form, per (sample, group) over its M = H*W*C/G values: with xn = (x - mu) rstd and
     * g = dy gamma, dx = rstd (g - mean(g) - xn mean(g xn)); dgamma = sum dy xn, dbeta = sum dy.
     * Five element-wise passes over [B,H*W,C] and two reductions (per-channel means over H*W,
     * from which the group means, dgamma and dbeta follow), where the op-by-op VJP of the
     * composition took about three times as many.
     */
    vjp: (o, dy, _xs, _y, a, need) => {
      const { xn, rstd } = a.saved as { xn: any; rstd: any };
      const gamma = X(_xs, 1);
      const [B, H, W, C] = o.shape(dy);
      const dyr = o.reshape(dy, [B, H * W, C]), xnr = o.reshape(xn, [B, H * W, C]);
      const mdy = o.mean(dyr, 1), mp = o.mean(o.mul(dyr, xnr), 1); // [B,C]: per-channel means of dy and dy xn
      const dgamma = need[1] ? o.mul(o.sum(mp, [0]), H * W) : null;
      const dbeta = need[2] ? o.mul(o.sum(mdy, [0]), H * W) : null;
      if (!need[0]) return [null, dgamma, dbeta];
      const m1 = groupMean(o, o.mul(mdy, gamma), a.groups), m2 = groupMean(o, o.mul(mp, gamma), a.groups); // mean(g), mean(g xn): [B,1,C]
      const dx = o.sub(o.sub(o.mul(dyr, o.mul(rstd, gamma)), o.mul(xnr, o.mul(rstd, m2))), o.mul(rstd, m1));
      return [o.reshape(dx, [B, H, W, C]), dgamma, dbeta];
    },
  } as Rule<{ groups: number; eps: number; saved?: unknown }>,
  silu: {
    // y = x s, s = sigmoid(x) (the composition of diffusion/layers.ts; s kept for the VJP)
    forward: (o, xs, a) => { const s = o.sigmoid(X(xs, 0)); a.saved = s; return o.mul(X(xs, 0), s); },
    /**
     * dy/dx = s + x s (1 - s) = s + (y - y s): four element-wise passes (y s, the difference, the
     * sum, the product with dy) where the VJPs of the Mul and the Sigmoid took six (dy s, dy x,
     * s^2, s - s^2, their product, and the sum of the two paths into x).
     */
    vjp: (o, dy, _xs, y, a) => { const s = a.saved as any; return [o.mul(dy, o.add(s, o.sub(y, o.mul(y, s))))]; },
  } as Rule<{ saved?: unknown }>,
} satisfies Record<string, Rule<any>>;
