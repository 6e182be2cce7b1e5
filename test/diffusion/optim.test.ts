import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AdamW, DEFAULT_ADAMW, clipGradNorm, emaDecay, emaUpdate, type AdamWConfig } from '../../src/diffusion/optim.js';
import { Rng } from '../../src/util/rng.js';

/** torch.optim.AdamW (_single_tensor_adamw, amsgrad=False, maximize=False) in float64. */
class TorchAdamW64 {
  m: Float64Array; v: Float64Array; step = 0;
  constructor(n: number, readonly c: AdamWConfig) { this.m = new Float64Array(n); this.v = new Float64Array(n); }
  update(p: Float64Array, g: ArrayLike<number>, lr: number): void {
    this.step += 1;
    for (let i = 0; i < p.length; i++) p[i] *= 1 - lr * this.c.weightDecay;           // param.mul_(1 - lr*wd)
    for (let i = 0; i < p.length; i++) this.m[i] += (g[i] - this.m[i]) * (1 - this.c.beta1); // exp_avg.lerp_(grad, 1-beta1)
    for (let i = 0; i < p.length; i++) this.v[i] = this.v[i] * this.c.beta2 + (1 - this.c.beta2) * g[i] * g[i];
    const bc1 = 1 - this.c.beta1 ** this.step;
    const bc2 = 1 - this.c.beta2 ** this.step;
    const stepSize = lr / bc1;
    const bc2sqrt = Math.sqrt(bc2);
    for (let i = 0; i < p.length; i++) {
      const denom = Math.sqrt(this.v[i]) / bc2sqrt + this.c.eps;
      p[i] += -stepSize * (this.m[i] / denom);
    }
  }
}

function relNorm(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, n = 0;
  for (let i = 0; i < b.length; i++) { d += (a[i] - b[i]) ** 2; n += b[i] ** 2; }
  return Math.sqrt(d / n);
}

for (const [label, cfg, lrs] of [
  ['defaults (lr 1e-3, wd 0.01)', { ...DEFAULT_ADAMW, lr: 1e-3 }, [1e-3, 1e-3, 1e-3, 1e-3, 1e-3]],
  ['scheduled lr, wd 0.1, beta2 0.99, eps 1e-6', { lr: 5e-2, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1 }, [1e-2, 2e-2, 3e-2, 5e-2, 4e-2]],
] as [string, AdamWConfig, number[]][]) {
  test(`AdamW matches a float64 PyTorch AdamW for 5 steps: ${label}`, () => {
    const n = 12;
    const rng = new Rng(11);
    const p0 = new Float32Array(n);
    for (let i = 0; i < n; i++) p0[i] = rng.normal();
    const p32 = p0.slice();
    const p64 = Float64Array.from(p0);
    const opt = new AdamW(n, cfg);
    const ref = new TorchAdamW64(n, cfg);
    for (let s = 0; s < 5; s++) {
      // gradients of very different magnitudes (1e-5 .. 10): makes eps placement and bias corrections visible
      const g = new Float32Array(n);
      for (let i = 0; i < n; i++) g[i] = rng.normal() * 10 ** ((i % 7) - 5);
      if (s === 2) g[3] = 0; // a zero gradient still decays and moves by momentum
      opt.step(p32, g, lrs[s]);
      ref.update(p64, g, lrs[s]);
      assert.is(opt.t, s + 1);
      for (let i = 0; i < n; i++) {
        assert.ok(Math.abs(p32[i] - p64[i]) / Math.abs(p64[i]) < 1e-6, `step ${s + 1} p[${i}] ${p32[i]} vs ${p64[i]}`);
      }
      assert.ok(relNorm(opt.m, ref.m) < 1e-6, `step ${s + 1} m`);
      assert.ok(relNorm(opt.v, ref.v) < 1e-6, `step ${s + 1} v`);
    }
    // The update itself (p - p0), not just p, must match: a wrong bias correction hides in p's digits.
    const d32 = p32.map((v, i) => v - p0[i]);
    const d64 = Array.from(p64, (v, i) => v - p0[i]);
    for (let i = 0; i < n; i++) {
      assert.ok(Math.abs(d32[i] - d64[i]) <= 1e-4 * Math.abs(d64[i]) + 2e-7, `delta[${i}] ${d32[i]} vs ${d64[i]}`);
    }
  });
}

test('AdamW first step moves each weight by ~lr*sign(g) (+ decoupled decay)', () => {
  const cfg = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.5 };
  const opt = new AdamW(3, cfg);
  const p = Float32Array.from([1, -2, 3]);
  opt.step(p, Float32Array.from([0.3, -7, 1e-3]));
  // step 1: mhat = g, vhat = g^2 -> update = g/(|g|+eps) ~ sign(g); decay multiplies p by 1 - lr*wd = 0.95
  const want = [1 * 0.95 - 0.1, -2 * 0.95 + 0.1, 3 * 0.95 - 0.1 * (1e-3 / (1e-3 + 1e-8))];
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(p[i] - want[i]) < 1e-6, `p[${i}] ${p[i]} vs ${want[i]}`);
});

test('clipGradNorm: norm 5 -> 1, exactly proportional; returns the pre-clip norm', () => {
  const g = Float32Array.from([3, 4]);
  const norm = clipGradNorm(g, 1);
  assert.is(norm, 5);
  const c = 1 / (5 + 1e-6); // torch: clip_coef = max_norm / (total_norm + 1e-6)
  assert.ok(Math.abs(g[0] - 3 * c) < 1e-7 && Math.abs(g[1] - 4 * c) < 1e-7, `${g[0]}, ${g[1]}`);
  assert.ok(Math.abs(Math.hypot(g[0], g[1]) - 1) < 1e-6);
  assert.ok(Math.abs(g[0] / g[1] - 0.75) < 1e-7, 'direction kept');

  // long random vector: norm in float64 recomputed here
  const rng = new Rng(5);
  const v = rng.normals(1000);
  const orig = v.slice();
  let ss = 0;
  for (const x of orig) ss += x * x;
  const ref = Math.sqrt(ss);
  const got = clipGradNorm(v, 0.5);
  assert.ok(Math.abs(got - ref) / ref < 1e-12, `norm ${got} vs ${ref}`);
  let ss2 = 0;
  for (let i = 0; i < v.length; i++) {
    assert.ok(Math.abs(v[i] - orig[i] * (0.5 / (ref + 1e-6))) <= 1e-7 * Math.abs(orig[i]) + 1e-12, `v[${i}]`);
    ss2 += v[i] * v[i];
  }
  assert.ok(Math.abs(Math.sqrt(ss2) - 0.5) < 1e-6);

  // below the threshold (or maxNorm <= 0): untouched, bit for bit
  const small = Float32Array.from([0.3, -0.4]);
  assert.ok(Math.abs(clipGradNorm(small, 1) - 0.5) < 1e-7);
  assert.equal(Array.from(small), [Math.fround(0.3), Math.fround(-0.4)]);
  const big = Float32Array.from([30, 40]);
  assert.is(clipGradNorm(big, 0), 50);
  assert.equal(Array.from(big), [30, 40]);
});

test('emaDecay = min(max, (1+n)/(10+n))', () => {
  for (const n of [0, 1, 2, 5, 10, 100, 1000, 17989, 17990, 17991, 1e5, 1e7]) {
    const want = Math.min(0.9995, (1 + n) / (10 + n));
    assert.ok(Math.abs(emaDecay(0.9995, n) - want) < 1e-15, `n=${n}: ${emaDecay(0.9995, n)} vs ${want}`);
  }
  assert.ok(Math.abs(emaDecay(0.9995, 0) - 0.1) < 1e-15);
  assert.is(emaDecay(0.9995, 1e6), 0.9995);
  assert.ok(emaDecay(0.9995, 17989) < 0.9995);
  assert.is(emaDecay(0.99, 10_000), 0.99);
  // monotone non-decreasing in n
  let prev = -1;
  for (let n = 0; n < 30000; n += 7) { const d = emaDecay(0.9995, n); assert.ok(d >= prev); prev = d; }
});

test('emaUpdate: ema <- d*ema + (1-d)*p; repeated updates converge geometrically', () => {
  const rng = new Rng(3);
  const ema = rng.normals(50), p = rng.normals(50);
  const e0 = Float64Array.from(ema);
  emaUpdate(ema, p, 0.9);
  for (let i = 0; i < 50; i++) {
    const ref = 0.9 * e0[i] + 0.1 * p[i];
    assert.ok(Math.abs(ema[i] - ref) < 1e-6 * Math.max(1, Math.abs(ref)), `ema[${i}]`);
  }
  // d = 0 copies p; d = 1 leaves ema unchanged
  const a = Float32Array.from([1, 2, 3]);
  emaUpdate(a, Float32Array.from([7, 8, 9]), 0);
  assert.equal(Array.from(a), [7, 8, 9]);
  emaUpdate(a, Float32Array.from([0, 0, 0]), 1);
  assert.equal(Array.from(a), [7, 8, 9]);
  // k updates towards a constant target: ema - p = d^k (ema0 - p)
  const e = Float32Array.from([1]), tgt = Float32Array.from([0]);
  for (let k = 0; k < 20; k++) emaUpdate(e, tgt, 0.8);
  assert.ok(Math.abs(e[0] - 0.8 ** 20) < 1e-7, `${e[0]} vs ${0.8 ** 20}`);
});

test.run();
