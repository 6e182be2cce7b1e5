/**
 * An independent float64 reference of engine/ops.ts: naive loops over row-major Float64Arrays,
 * written from the op definitions (not from either engine). The VJP tests differentiate it by
 * central finite differences.
 */
import type { Ops } from '../../src/engine/ops.js';

export class R {
  constructor(readonly d: Float64Array, readonly s: number[]) {
    if (d.length !== s.reduce((a, b) => a * b, 1)) throw new Error(`R: ${d.length} values for [${s}]`);
  }
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const strides = (s: number[]) => s.map((_, i) => size(s.slice(i + 1)));
/** multi-index of flat offset i in shape s */
const unravel = (i: number, s: number[]) => { const st = strides(s); return s.map((d, k) => Math.floor(i / st[k]) % d); };
/** offset of a (right-aligned, broadcast) multi-index in shape s */
const bcastOffset = (idx: number[], s: number[]) => {
  const st = strides(s), off = idx.length - s.length;
  return s.reduce((o, d, k) => o + (d === 1 ? 0 : idx[k + off] * st[k]), 0);
};
function bcastShape(a: number[], b: number[]): number[] {
  const R = Math.max(a.length, b.length);
  const pa = [...Array(R - a.length).fill(1), ...a], pb = [...Array(R - b.length).fill(1), ...b];
  return pa.map((d, i) => { if (d !== pb[i] && d !== 1 && pb[i] !== 1) throw new Error(`ref: broadcast [${a}] [${b}]`); return Math.max(d, pb[i]); });
}
function binary(a: R, b: R | number, f: (x: number, y: number) => number): R {
  const bb = typeof b === 'number' ? new R(Float64Array.of(b), []) : b;
  const s = bcastShape(a.s, bb.s);
  const out = new Float64Array(size(s));
  for (let i = 0; i < out.length; i++) { const idx = unravel(i, s); out[i] = f(a.d[bcastOffset(idx, a.s)], bb.d[bcastOffset(idx, bb.s)]); }
  return new R(out, s);
}
const unary = (x: R, f: (v: number) => number) => new R(x.d.map(f), x.s);

export const refOps: Ops<R> = {
  shape: (x) => x.s,
  constant: (v, s) => new R(Float64Array.from(v), s),
  conv2d(x, w, b, stride, pad) {
    const [B, H, W, C] = x.s, [KH, KW, , O] = w.s;
    const Ho = Math.floor((H + 2 * pad - KH) / stride) + 1, Wo = Math.floor((W + 2 * pad - KW) / stride) + 1;
    const out = new Float64Array(B * Ho * Wo * O);
    for (let n = 0; n < B; n++) for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) for (let o = 0; o < O; o++) {
      let acc = b.d[o];
      for (let p = 0; p < KH; p++) for (let q = 0; q < KW; q++) {
        const y = i * stride + p - pad, z = j * stride + q - pad;
        if (y < 0 || z < 0 || y >= H || z >= W) continue;
        for (let c = 0; c < C; c++) acc += x.d[((n * H + y) * W + z) * C + c] * w.d[((p * KW + q) * C + c) * O + o];
      }
      out[((n * Ho + i) * Wo + j) * O + o] = acc;
    }
    return new R(out, [B, Ho, Wo, O]);
  },
  matMul(a, b, transposeB = false) {
    const bt = transposeB ? refOps.transpose(b, [...b.s.keys()].map((i, _, k) => (i < k.length - 2 ? i : i === k.length - 2 ? k.length - 1 : k.length - 2))) : b;
    const M = a.s[a.s.length - 2], K = a.s[a.s.length - 1], N = bt.s[bt.s.length - 1];
    if (bt.s[bt.s.length - 2] !== K) throw new Error(`ref matMul [${a.s}] x [${bt.s}]`);
    const batch = bcastShape(a.s.slice(0, -2), bt.s.slice(0, -2));
    const out = new Float64Array(size(batch) * M * N);
    for (let r = 0; r < size(batch); r++) {
      const idx = unravel(r, batch);
      const ao = bcastOffset(idx, a.s.slice(0, -2)) * M * K, bo = bcastOffset(idx, bt.s.slice(0, -2)) * K * N;
      for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += a.d[ao + i * K + k] * bt.d[bo + k * N + j];
        out[(r * M + i) * N + j] = acc;
      }
    }
    return new R(out, [...batch, M, N]);
  },
  add: (a, b) => binary(a, b, (x, y) => x + y),
  sub: (a, b) => binary(a, b, (x, y) => x - y),
  mul: (a, b) => binary(a, b, (x, y) => x * y),
  sigmoid: (x) => unary(x, (v) => 1 / (1 + Math.exp(-v))),
  sin: (x) => unary(x, Math.sin),
  cos: (x) => unary(x, Math.cos),
  square: (x) => unary(x, (v) => v * v),
  rsqrt: (x) => unary(x, (v) => 1 / Math.sqrt(v)),
  reshape(x, shape) {
    const known = shape.filter((d) => d >= 0).reduce((a, b) => a * b, 1);
    return new R(x.d, shape.map((d) => (d < 0 ? x.d.length / known : d)));
  },
  transpose(x, perm) {
    const s = perm.map((p) => x.s[p]), st = strides(x.s);
    const out = new Float64Array(x.d.length);
    for (let i = 0; i < out.length; i++) { const idx = unravel(i, s); out[i] = x.d[idx.reduce((o, v, k) => o + v * st[perm[k]], 0)]; }
    return new R(out, s);
  },
  concat(xs, axis) {
    const s = [...xs[0].s];
    s[axis] = xs.reduce((a, x) => a + x.s[axis], 0);
    const out = new Float64Array(size(s));
    for (let i = 0; i < out.length; i++) {
      const idx = unravel(i, s);
      let k = 0, at = idx[axis];
      while (at >= xs[k].s[axis]) at -= xs[k++].s[axis];
      const src = [...idx]; src[axis] = at;
      out[i] = xs[k].d[bcastOffset(src, xs[k].s)];
    }
    return new R(out, s);
  },
  slice(x, axis, begin, n) {
    const s = x.s.map((d, i) => (i === axis ? n : d)), st = strides(x.s);
    const out = new Float64Array(size(s));
    for (let i = 0; i < out.length; i++) { const idx = unravel(i, s); idx[axis] += begin; out[i] = x.d[idx.reduce((o, v, k) => o + v * st[k], 0)]; }
    return new R(out, s);
  },
  softmax(x) {
    const n = x.s[x.s.length - 1], out = new Float64Array(x.d.length);
    for (let r = 0; r < x.d.length; r += n) {
      let m = -Infinity, z = 0;
      for (let k = 0; k < n; k++) m = Math.max(m, x.d[r + k]);
      for (let k = 0; k < n; k++) z += (out[r + k] = Math.exp(x.d[r + k] - m));
      for (let k = 0; k < n; k++) out[r + k] /= z;
    }
    return new R(out, x.s);
  },
  mean(x, axis, keepDims = false) {
    const kept = x.s.map((d, i) => (i === axis ? 1 : d));
    const out = new Float64Array(size(kept));
    for (let i = 0; i < x.d.length; i++) { const idx = unravel(i, x.s); idx[axis] = 0; out[bcastOffset(idx, kept)] += x.d[i] / x.s[axis]; }
    return new R(out, keepDims ? kept : x.s.filter((_, i) => i !== axis));
  },
  broadcastTo(x, shape) {
    const s = shape.map((d, i) => (d === -1 ? x.s[i] : d));
    return binary(new R(new Float64Array(size(s)), s), x, (_, v) => v);
  },
  resizeNearest2x(x) {
    const [B, H, W, C] = x.s, out = new Float64Array(4 * x.d.length);
    for (let n = 0; n < B; n++) for (let i = 0; i < 2 * H; i++) for (let j = 0; j < 2 * W; j++) for (let c = 0; c < C; c++) {
      out[((n * 2 * H + i) * 2 * W + j) * C + c] = x.d[((n * H + (i >> 1)) * W + (j >> 1)) * C + c];
    }
    return new R(out, [B, 2 * H, 2 * W, C]);
  },
  embedding(table, labels, batch) {
    const [K, E] = table.s, out = new Float64Array(batch * E);
    for (let n = 0; n < batch; n++) { const k = labels ? labels.d[n] : K - 1; for (let e = 0; e < E; e++) out[n * E + e] = table.d[k * E + e]; }
    return new R(out, [batch, E]);
  },
};
