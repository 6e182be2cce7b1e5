/**
 * Reverse-mode differentiation over Ops: Tape<T> is itself an Ops (over Var<T>), so the network's
 * own forward (unetApply / videoApply) runs over it unchanged. Each call runs the op's forward on
 * the inner GradOps<T> (e.g. the ONNX graph builder, which emits the forward nodes) and records
 * (rule, inputs, output) when some input needs a gradient. gradients() then walks the records
 * backwards, emitting each rule's VJP on the same inner ops and summing cotangents per value.
 *
 * The rules live in engine/vjp.ts, one per op; every method here is one line.
 */
import type { Ops } from './ops.js';
import { GradOps, RULES, Rule } from './vjp.js';

export class Var<T> {
  constructor(readonly v: T, readonly id: number, readonly needsGrad: boolean) {}
}

interface Entry<T> { rule: Rule<any>; xs: (Var<T> | undefined)[]; y: Var<T>; a: unknown }

export class Tape<T> implements Ops<Var<T>> {
  private entries: Entry<T>[] = [];
  private ids = 0;
  constructor(readonly inner: GradOps<T>) {}

  /** A value from outside the tape; needsGrad marks the leaves gradients() may ask for. */
  leaf(v: T, needsGrad: boolean): Var<T> {
    return new Var(v, this.ids++, needsGrad);
  }

  /** number of recorded ops (those on a path from a leaf that needs a gradient) */
  get size(): number { return this.entries.length; }

  private rec<A>(rule: Rule<A>, xs: (Var<T> | undefined)[], a: A): Var<T> {
    const y = rule.forward(this.inner, xs.map((x) => x?.v), a);
    const needsGrad = xs.some((x) => x?.needsGrad);
    const out = new Var(y, this.ids++, needsGrad);
    if (needsGrad) this.entries.push({ rule, xs, y: out, a });
    return out;
  }

  shape(x: Var<T>): number[] { return this.inner.shape(x.v); }
  constant(values: Float32Array, shape: number[]): Var<T> { return this.leaf(this.inner.constant(values, shape), false); }
  conv2d(x: Var<T>, w: Var<T>, b: Var<T>, stride: number, pad: number): Var<T> { return this.rec(RULES.conv2d, [x, w, b], { stride, pad }); }
  matMul(a: Var<T>, b: Var<T>, transposeB = false): Var<T> { return this.rec(RULES.matMul, [a, b], { transposeB }); }
  add(a: Var<T>, b: Var<T> | number): Var<T> { return typeof b === 'number' ? this.rec(RULES.addScalar, [a], b) : this.rec(RULES.add, [a, b], null); }
  sub(a: Var<T>, b: Var<T>): Var<T> { return this.rec(RULES.sub, [a, b], null); }
  mul(a: Var<T>, b: Var<T> | number): Var<T> { return typeof b === 'number' ? this.rec(RULES.mulScalar, [a], b) : this.rec(RULES.mul, [a, b], null); }
  sigmoid(x: Var<T>): Var<T> { return this.rec(RULES.sigmoid, [x], null); }
  sin(x: Var<T>): Var<T> { return this.rec(RULES.sin, [x], null); }
  cos(x: Var<T>): Var<T> { return this.rec(RULES.cos, [x], null); }
  square(x: Var<T>): Var<T> { return this.rec(RULES.square, [x], null); }
  rsqrt(x: Var<T>): Var<T> { return this.rec(RULES.rsqrt, [x], null); }
  reshape(x: Var<T>, shape: number[]): Var<T> { return this.rec(RULES.reshape, [x], shape); }
  transpose(x: Var<T>, perm: number[]): Var<T> { return this.rec(RULES.transpose, [x], perm); }
  concat(xs: Var<T>[], axis: number): Var<T> { return this.rec(RULES.concat, xs, axis); }
  slice(x: Var<T>, axis: number, begin: number, size: number): Var<T> { return this.rec(RULES.slice, [x], { axis, begin, size }); }
  softmax(x: Var<T>): Var<T> { return this.rec(RULES.softmax, [x], null); }
  mean(x: Var<T>, axis: number, keepDims = false): Var<T> { return this.rec(RULES.mean, [x], { axis, keepDims }); }
  broadcastTo(x: Var<T>, shape: number[]): Var<T> { return this.rec(RULES.broadcastTo, [x], shape); }
  resizeNearest2x(x: Var<T>): Var<T> { return this.rec(RULES.resizeNearest2x, [x], null); }
  embedding(table: Var<T>, labels: Var<T> | undefined, batch: number): Var<T> { return this.rec(RULES.embedding, [table, labels], batch); }
  groupNorm(x: Var<T>, gamma: Var<T>, beta: Var<T>, groups: number, eps: number): Var<T> { return this.rec(RULES.groupNorm, [x, gamma, beta], { groups, eps }); }
  silu(x: Var<T>): Var<T> { return this.rec(RULES.silu, [x], {}); }

  /**
   * d loss / d wrt[i] for a scalar-shaped (or any-shaped: summed) loss, as inner values. A leaf
   * the loss does not depend on gets zeros.
   */
  gradients(loss: Var<T>, wrt: Var<T>[]): T[] {
    const o = this.inner;
    const shape = o.shape(loss.v);
    const grads = new Map<number, T>([[loss.id, o.constant(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(1), shape)]]);
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i];
      const dy = grads.get(e.y.id);
      if (dy === undefined) continue; // not on a path to the loss
      const need = e.xs.map((x) => !!x?.needsGrad);
      const dxs = e.rule.vjp(o, dy, e.xs.map((x) => x?.v), e.y.v, e.a, need);
      e.xs.forEach((x, k) => {
        const g = dxs[k];
        if (!x || !need[k] || !g) return;
        const prev = grads.get(x.id);
        grads.set(x.id, prev === undefined ? g : o.add(prev, g));
      });
    }
    return wrt.map((w) => grads.get(w.id) ?? o.constant(new Float32Array(o.shape(w.v).reduce((a, b) => a * b, 1)), o.shape(w.v)));
  }
}
