import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend.js';
import { makeSchedule } from '../../src/diffusion/schedule.js';
import { ddimStep, ddpmStep, sample, samplingTimesteps } from '../../src/diffusion/samplers.js';
import { Rng } from '../../src/util/rng.js';

const s = makeSchedule({ kind: 'linear', timesteps: 10, betaStart: 0.01, betaEnd: 0.2 });
/** abar_t recomputed independently: product of (1 - beta_i), betas from the closed form. */
const abarRef = (t: number) => { let p = 1; for (let i = 0; i <= t; i++) p *= 1 - (0.01 + (0.19 * i) / 9); return p; };
const x = [0.5, -0.3, 1.2];
const eps = [0.1, 0.2, -0.4];
const z = [0.7, -1.2, 0.05];
const T4 = (v: number[]) => tf.tensor4d(v, [1, 1, 3, 1]);

test.before(async () => { await initBackend('wasm', { quiet: true }); });

test('timestep spacings', () => {
  assert.equal(samplingTimesteps(1000, 4, 'leading'), [750, 500, 250, 0]);
  assert.equal(samplingTimesteps(1000, 4, 'trailing'), [999, 749, 499, 249]);
  assert.equal(samplingTimesteps(10, 10, 'leading'), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  assert.throws(() => samplingTimesteps(10, 0), /positive integer/);
  assert.throws(() => samplingTimesteps(10, 11), /exceeds/);
});

test('one full DDPM step equals Ho et al. eq. 11 mean + sqrt(beta~) z', async () => {
  const t = 5;
  const abar = abarRef(t), abarPrev = abarRef(t - 1);
  const beta = 0.01 + (0.19 * t) / 9, alpha = 1 - beta;
  const r = ddpmStep(s, 'epsilon', T4(eps), T4(x), t, t - 1, T4(z));
  const got = await r.prev.data();
  for (let i = 0; i < 3; i++) {
    const mean = (x[i] - (beta / Math.sqrt(1 - abar)) * eps[i]) / Math.sqrt(alpha);
    const varSmall = (beta * (1 - abarPrev)) / (1 - abar);
    const want = mean + Math.sqrt(varSmall) * z[i];
    assert.ok(Math.abs(got[i] - want) < 1e-5, `i=${i}: ${got[i]} vs ${want}`);
  }
  // fixed_large uses beta_t
  const rl = ddpmStep(s, 'epsilon', T4(eps), T4(x), t, t - 1, T4(z), { variance: 'fixed_large' });
  const gl = await rl.prev.data();
  const mean0 = (x[0] - (beta / Math.sqrt(1 - abar)) * eps[0]) / Math.sqrt(alpha);
  assert.ok(Math.abs(gl[0] - (mean0 + Math.sqrt(beta) * z[0])) < 1e-5);
});

test('last DDPM step returns the posterior mean = x0 estimate, no noise', async () => {
  const r = ddpmStep(s, 'epsilon', T4(eps), T4(x), 0, -1, T4(z));
  const got = await r.prev.data();
  const a = abarRef(0);
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(got[i] - (x[i] - Math.sqrt(1 - a) * eps[i]) / Math.sqrt(a)) < 1e-5);
});

test('strided DDIM step (eta 0) by hand, and eta 1 adds sigma z', async () => {
  const t = 7, tp = 3;
  const a = abarRef(t), ap = abarRef(tp);
  const r = ddimStep(s, 'epsilon', T4(eps), T4(x), t, tp, 0, null);
  const got = await r.prev.data();
  for (let i = 0; i < 3; i++) {
    const x0 = (x[i] - Math.sqrt(1 - a) * eps[i]) / Math.sqrt(a);
    const want = Math.sqrt(ap) * x0 + Math.sqrt(1 - ap) * eps[i];
    assert.ok(Math.abs(got[i] - want) < 1e-5, `${got[i]} vs ${want}`);
  }
  const r1 = ddimStep(s, 'epsilon', T4(eps), T4(x), t, tp, 1, T4(z));
  const g1 = await r1.prev.data();
  const sigma = Math.sqrt((1 - ap) / (1 - a)) * Math.sqrt(1 - a / ap);
  const x00 = (x[0] - Math.sqrt(1 - a) * eps[0]) / Math.sqrt(a);
  const want0 = Math.sqrt(ap) * x00 + Math.sqrt(1 - ap - sigma * sigma) * eps[0] + sigma * z[0];
  assert.ok(Math.abs(g1[0] - want0) < 1e-5);
});

test('v and x0 predictions give the same step as the equivalent epsilon output', async () => {
  const t = 6, tp = 2, a = abarRef(t);
  const x0 = x.map((xi, i) => (xi - Math.sqrt(1 - a) * eps[i]) / Math.sqrt(a));
  const v = x.map((_, i) => Math.sqrt(a) * eps[i] - Math.sqrt(1 - a) * x0[i]);
  const ref = await ddimStep(s, 'epsilon', T4(eps), T4(x), t, tp, 0, null).prev.data();
  const fromV = await ddimStep(s, 'v', T4(v), T4(x), t, tp, 0, null).prev.data();
  const fromX0 = await ddimStep(s, 'x0', T4(x0), T4(x), t, tp, 0, null).prev.data();
  for (let i = 0; i < 3; i++) {
    assert.ok(Math.abs(fromV[i] - ref[i]) < 1e-5);
    assert.ok(Math.abs(fromX0[i] - ref[i]) < 1e-5);
  }
});

test('DDIM with eta 0 is deterministic: only the initial noise is drawn', async () => {
  const net = (xx: tf.Tensor4D) => tf.mul(xx, 0.3) as tf.Tensor4D; // any fixed function
  const shape: [number, number, number, number] = [2, 4, 4, 1];
  const r1 = new Rng(5), r2 = new Rng(5);
  const a = await sample(net, s, 'epsilon', shape, { sampler: 'ddim', steps: 5, eta: 0, rng: r1 });
  const b = await sample(net, s, 'epsilon', shape, { sampler: 'ddim', steps: 5, eta: 0, rng: r2 });
  assert.equal(Array.from(await a.data()), Array.from(await b.data()));
  const probe = new Rng(5);
  probe.normals(32);
  assert.equal(r1.getState(), probe.getState(), 'DDIM eta=0 drew noise after the initial x_T');
  // DDPM draws fresh noise each step, so a different seed after x_T changes the result
  const before = tf.memory().numTensors;
  const c = await sample(net, s, 'epsilon', shape, { sampler: 'ddpm', steps: 5, rng: new Rng(5) });
  assert.not.equal(Array.from(await c.data()), Array.from(await a.data()));
  c.dispose();
  assert.is(tf.memory().numTensors, before, 'sampler leaked tensors');
});

test('async denoisers (the onnx engine) give the same chain as sync ones, with guidance and without leaks', async () => {
  // a conditional toy network: output depends on x, t and the labels
  const netSync = (xx: tf.Tensor4D, t: number | Float32Array, labels?: Int32Array) => tf.tidy(() => {
    const lab = tf.tensor4d(Float32Array.from(labels ?? new Int32Array(xx.shape[0]), (l) => l / 10), [xx.shape[0], 1, 1, 1]);
    return tf.add(tf.mul(xx, 0.2 + (t as number) / 100), lab) as tf.Tensor4D;
  });
  const netAsync = async (xx: tf.Tensor4D, t: number | Float32Array, labels?: Int32Array) => {
    await new Promise((r) => setTimeout(r, 1));
    return netSync(xx, t, labels);
  };
  const shape: [number, number, number, number] = [3, 4, 4, 1];
  const opts = (seed: number) => ({ sampler: 'ddpm' as const, steps: 4, guidance: 2.5, labels: Int32Array.of(1, 4, 7), nullLabel: 10, rng: new Rng(seed) });
  const before = tf.memory().numTensors;
  const a = await sample(netSync, s, 'epsilon', shape, opts(3));
  const b = await sample(netAsync, s, 'epsilon', shape, opts(3));
  assert.equal(Array.from(await a.data()), Array.from(await b.data()));
  a.dispose(); b.dispose();
  assert.is(tf.memory().numTensors, before, 'sampler leaked tensors');
  // a failing network leaks nothing either
  const bad = async () => { throw new Error('engine died'); };
  try {
    await sample(bad, s, 'epsilon', shape, opts(3));
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.match(String(e), /engine died/);
  }
  assert.is(tf.memory().numTensors, before, 'sampler leaked tensors after an engine error');
});

test.run();
