import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { addNoise, makeSchedule, DEFAULT_SCHEDULE, type ScheduleConfig } from '../../src/diffusion/schedule.js';
import { Rng } from '../../src/util/rng.js';
import { throwsDriftlab } from '../helpers/backend.js';

function rel(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);
}

test('linear betas equal the closed-form linspace(beta_start, beta_end, T)', () => {
  for (const [T, b0, b1] of [[1000, 1e-4, 0.02], [10, 1e-3, 0.5], [2, 0.1, 0.2]] as const) {
    const s = makeSchedule({ kind: 'linear', timesteps: T, betaStart: b0, betaEnd: b1 });
    assert.is(s.T, T);
    assert.is(s.betas.length, T);
    const step = (b1 - b0) / (T - 1);
    for (let i = 0; i < T; i++) {
      const ref = i === T - 1 ? b1 : b0 + i * step; // numpy linspace pins the endpoint
      assert.ok(rel(s.betas[i], ref) < 1e-13, `T=${T} beta[${i}] = ${s.betas[i]} vs ${ref}`);
      assert.ok(rel(s.alphas[i], 1 - ref) < 1e-13, `alpha[${i}]`);
      assert.is(s.posteriorVarianceLarge[i], s.betas[i]);
    }
    assert.is(s.betas[0], b0);
  }
  // T = 1: a single step with beta = betaStart
  const s1 = makeSchedule({ timesteps: 1 });
  assert.equal(Array.from(s1.betas), [1e-4]);
});

test('alphasCumprod equals exp(sum log1p(-beta)) in float64 (rel 1e-12), and derived arrays', () => {
  for (const cfg of [DEFAULT_SCHEDULE, { kind: 'cosine', timesteps: 1000, betaStart: 0, betaEnd: 0 } as ScheduleConfig, { ...DEFAULT_SCHEDULE, timesteps: 50 }]) {
    const s = makeSchedule(cfg);
    let logsum = 0;
    for (let t = 0; t < s.T; t++) {
      const prevRef = Math.exp(logsum);
      logsum += Math.log1p(-s.betas[t]);
      const ref = Math.exp(logsum);
      assert.ok(rel(s.alphasCumprod[t], ref) < 1e-12, `${cfg.kind} abar[${t}] ${s.alphasCumprod[t]} vs ${ref}`);
      assert.ok(rel(s.alphasCumprodPrev[t], prevRef) < 1e-12, `abar_prev[${t}]`);
      assert.ok(rel(s.sqrtAlphasCumprod[t], Math.sqrt(ref)) < 1e-12, `sqrt abar[${t}]`);
      assert.ok(rel(s.sqrtOneMinusAlphasCumprod[t], Math.sqrt(-Math.expm1(logsum))) < 1e-10, `sqrt(1-abar)[${t}]`);
      assert.ok(rel(s.snr[t], ref / -Math.expm1(logsum)) < 1e-10, `snr[${t}]`);
      if (t > 0) {
        assert.ok(s.alphasCumprod[t] < s.alphasCumprod[t - 1], 'abar strictly decreasing');
        assert.ok(s.snr[t] < s.snr[t - 1], 'SNR strictly decreasing');
      }
    }
    assert.is(s.alphasCumprodPrev[0], 1);
  }
});

test('linear T=1000: abar_999 ~ 4.0358e-5 (independent float64 product)', () => {
  const s = makeSchedule();
  let p = 1;
  for (let i = 0; i < 1000; i++) p *= 1 - (1e-4 + (0.02 - 1e-4) * (i / 999));
  assert.ok(p > 4.0e-5 && p < 4.1e-5, `independent abar_999 = ${p}`);
  assert.ok(Math.abs(p - 4.0358e-5) < 0.0001e-5, `independent abar_999 = ${p}`);
  assert.ok(rel(s.alphasCumprod[999], p) < 1e-12, `schedule abar_999 = ${s.alphasCumprod[999]} vs ${p}`);
  assert.ok(s.alphasCumprod[999] > 4.0e-5 && s.alphasCumprod[999] < 4.1e-5);
  // abar_0 = 1 - beta_0 exactly
  assert.is(s.alphasCumprod[0], 1 - 1e-4);
});

test('cosine schedule: abar matches cos^2 closed form where betas are unclipped; clipping at 0.999', () => {
  const sOff = 0.008;
  const f = (u: number) => Math.cos(((u + sOff) / (1 + sOff)) * (Math.PI / 2)) ** 2;
  for (const T of [1000, 100, 10]) {
    const s = makeSchedule({ kind: 'cosine', timesteps: T });
    let clipped = 0;
    for (let i = 0; i < T; i++) {
      const raw = 1 - f((i + 1) / T) / f(i / T);
      if (raw > 0.999) {
        clipped++;
        assert.is(s.betas[i], 0.999, `T=${T} beta[${i}] must be clipped to 0.999`);
        assert.ok(rel(s.alphasCumprod[i], s.alphasCumprod[i - 1] * 0.001) < 1e-12, `abar after clipping at ${i}`);
      } else {
        assert.ok(Math.abs(s.betas[i] - raw) < 1e-12, `T=${T} beta[${i}] ${s.betas[i]} vs ${raw}`);
        assert.ok(s.betas[i] > 0, `beta[${i}] > 0`);
        // abar_i (index i = after step i+1) = f((i+1)/T) / f(0)
        const ref = f((i + 1) / T) / f(0);
        assert.ok(rel(s.alphasCumprod[i], ref) < 1e-9, `T=${T} abar[${i}] ${s.alphasCumprod[i]} vs closed form ${ref}`);
      }
    }
    // Only the very last step hits the clip (f(1) = cos^2(pi/2) ~ 0), for these T.
    assert.is(clipped, 1, `T=${T}: clipped steps`);
    assert.is(s.betas[T - 1], 0.999);
    assert.ok(s.betas[T - 2] < 0.999);
  }
  // a reference value: T=1000, abar at the midpoint
  const s = makeSchedule({ kind: 'cosine', timesteps: 1000 });
  assert.ok(Math.abs(s.alphasCumprod[499] - f(0.5) / f(0)) < 1e-12);
  assert.ok(Math.abs(s.alphasCumprod[499] - 0.4937) < 1e-3, `${s.alphasCumprod[499]}`);
});

test('posterior variance fixed_small = beta_t (1-abar_{t-1})/(1-abar_t), 0 at t=0', () => {
  for (const kind of ['linear', 'cosine'] as const) {
    const s = makeSchedule({ kind });
    const b = s.betas;
    assert.is(s.posteriorVarianceSmall[0], 0, `${kind}: t=0`);
    let abarPrev = 1;
    for (let t = 0; t < s.T; t++) {
      const abar = abarPrev * (1 - b[t]);
      const ref = (b[t] * (1 - abarPrev)) / (1 - abar);
      if (t > 0) assert.ok(rel(s.posteriorVarianceSmall[t], ref) < 1e-9, `${kind} t=${t}: ${s.posteriorVarianceSmall[t]} vs ${ref}`);
      assert.ok(s.posteriorVarianceSmall[t] <= b[t], 'beta~ <= beta');
      abarPrev = abar;
    }
  }
});

test('bad configs throw DriftlabError', () => {
  throwsDriftlab(() => makeSchedule({ kind: 'quadratic' as any }), /schedule/, 'quadratic');
  throwsDriftlab(() => makeSchedule({ timesteps: 0 }), /timesteps/, 'T=0');
  throwsDriftlab(() => makeSchedule({ timesteps: -3 }), /timesteps/, 'T=-3');
  throwsDriftlab(() => makeSchedule({ timesteps: 2.5 }), /timesteps/, 'T=2.5');
  throwsDriftlab(() => makeSchedule({ timesteps: NaN }), /timesteps/, 'T=NaN');
  throwsDriftlab(() => makeSchedule({ betaStart: 0.02, betaEnd: 1e-4 }), /beta/, 'start > end');
  throwsDriftlab(() => makeSchedule({ betaStart: 0, betaEnd: 0.02 }), /beta/, 'start = 0');
  throwsDriftlab(() => makeSchedule({ betaStart: 1e-4, betaEnd: 1 }), /beta/, 'end = 1');
});

test('addNoise: exact elementwise formula', () => {
  const s = makeSchedule();
  const rng = new Rng(7);
  const B = 3, D = 5;
  const x0 = rng.normals(B * D), eps = rng.normals(B * D);
  const t = Int32Array.from([0, 123, 999]);
  const out = addNoise(s, x0, eps, t);
  assert.instance(out, Float32Array);
  for (let b = 0; b < B; b++) {
    let abar = 1;
    for (let i = 0; i <= t[b]; i++) abar *= 1 - s.betas[i];
    for (let d = 0; d < D; d++) {
      const i = b * D + d;
      const ref = Math.sqrt(abar) * x0[i] + Math.sqrt(1 - abar) * eps[i];
      assert.ok(Math.abs(out[i] - ref) <= 1e-6 * Math.max(1, Math.abs(ref)), `b=${b} d=${d}: ${out[i]} vs ${ref}`);
    }
  }
});

test('addNoise statistics: mean sqrt(abar)*x0, variance 1-abar within 4 standard errors', () => {
  const s = makeSchedule();
  const rng = new Rng(2024);
  // Row 0: 200k elements at t=500 (the headline case); other rows check per-sample indexing.
  const ts = [500, 0, 250, 999];
  const D = 200_000;
  const B = ts.length;
  const x0 = new Float32Array(B * D).fill(0.5);
  const eps = rng.normals(B * D);
  const out = addNoise(s, x0, eps, Int32Array.from(ts));
  for (let b = 0; b < B; b++) {
    let abar = 1;
    for (let i = 0; i <= ts[b]; i++) abar *= 1 - (1e-4 + (0.02 - 1e-4) * (i / 999));
    let sum = 0, sumsq = 0;
    for (let i = b * D; i < (b + 1) * D; i++) sum += out[i];
    const mean = sum / D;
    for (let i = b * D; i < (b + 1) * D; i++) sumsq += (out[i] - mean) ** 2;
    const variance = sumsq / (D - 1);
    const wantMean = Math.sqrt(abar) * 0.5, wantVar = 1 - abar;
    const seMean = Math.sqrt(wantVar / D);
    const seVar = wantVar * Math.sqrt(2 / (D - 1));
    assert.ok(Math.abs(mean - wantMean) < 4 * seMean, `t=${ts[b]}: mean ${mean} vs ${wantMean} (se ${seMean})`);
    assert.ok(Math.abs(variance - wantVar) < 4 * seVar, `t=${ts[b]}: var ${variance} vs ${wantVar} (se ${seVar})`);
  }
});

test.run();
