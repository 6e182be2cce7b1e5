import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeSchedule } from '../../src/diffusion/schedule.js';
import { lossWeights, makeTarget, outputToX0Eps, validateObjective } from '../../src/diffusion/objective.js';
import { DriftlabError } from '../../src/util/errors.js';

const s = makeSchedule();
const t = [0, 10, 300, 999];
const snrRef = (k: number) => { let p = 1; for (let i = 0; i <= k; i++) p *= 1 - (1e-4 + ((0.02 - 1e-4) * i) / 999); return p / (1 - p); };

test('min-SNR-gamma weights per prediction type equal min(SNR, g) / {SNR, SNR+1, 1}', () => {
  for (const prediction of ['epsilon', 'v', 'x0'] as const) {
    const w = lossWeights({ prediction, weighting: 'min-snr', snrGamma: 5 }, s, t);
    t.forEach((k, i) => {
      const snr = snrRef(k), m = Math.min(snr, 5);
      const want = prediction === 'epsilon' ? m / snr : prediction === 'v' ? m / (snr + 1) : m;
      assert.ok(Math.abs(w[i] - want) <= 1e-6 * Math.max(1, want), `${prediction} t=${k}: ${w[i]} vs ${want}`);
    });
  }
  assert.equal(Array.from(lossWeights({ prediction: 'epsilon', weighting: 'uniform', snrGamma: 5 }, s, t)), [1, 1, 1, 1]);
});

test('targets: epsilon -> eps, x0 -> x0, v = sqrt(abar) eps - sqrt(1-abar) x0; inversions recover x0 and eps', () => {
  const x0 = Float32Array.from([0.3, -0.8, 0.1, 0.9]);
  const eps = Float32Array.from([1.1, -0.2, 0.5, -1.4]);
  const tt = [100, 700];
  assert.is(makeTarget({ prediction: 'epsilon', weighting: 'uniform', snrGamma: 5 }, s, x0, eps, tt), eps);
  assert.is(makeTarget({ prediction: 'x0', weighting: 'uniform', snrGamma: 5 }, s, x0, eps, tt), x0);
  const v = makeTarget({ prediction: 'v', weighting: 'uniform', snrGamma: 5 }, s, x0, eps, tt);
  for (let i = 0; i < 4; i++) {
    const k = tt[i >> 1], a = s.alphasCumprod[k];
    assert.ok(Math.abs(v[i] - (Math.sqrt(a) * eps[i] - Math.sqrt(1 - a) * x0[i])) < 1e-6);
    const xt = Math.sqrt(a) * x0[i] + Math.sqrt(1 - a) * eps[i];
    for (const [pred, out] of [['epsilon', eps[i]], ['x0', x0[i]], ['v', v[i]]] as const) {
      const r = outputToX0Eps(pred, out, xt, a);
      assert.ok(Math.abs(r.x0 - x0[i]) < 1e-5 && Math.abs(r.eps - eps[i]) < 1e-5, `${pred}: ${JSON.stringify(r)}`);
    }
  }
});

test('bad objective configs are refused', () => {
  assert.throws(() => validateObjective({ prediction: 'score' as any, weighting: 'uniform', snrGamma: 5 }), (e: unknown) => e instanceof DriftlabError);
  assert.throws(() => validateObjective({ prediction: 'v', weighting: 'p2' as any, snrGamma: 5 }), (e: unknown) => e instanceof DriftlabError);
  assert.throws(() => validateObjective({ prediction: 'v', weighting: 'min-snr', snrGamma: 0 }), (e: unknown) => e instanceof DriftlabError);
});

test.run();
