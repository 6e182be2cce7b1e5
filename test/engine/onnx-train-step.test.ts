/**
 * The optimizer in the ONNX training graph (engine/train-graph.ts adamInGraph: global grad-norm
 * clipping, AdamW with decoupled weight decay and bias correction, EMA) against the tfjs
 * trainer's JS optimizer (diffusion/optim.ts), from a non-trivial state (Adam moments, EMA and
 * step count as after a few updates) so every term of every formula matters:
 *   - on the same gradient (the graph's own, from the gradient graph): the new state equals
 *     optim.ts to float32 rounding, the updates (new - old) included;
 *   - one whole step against the tfjs engine (train-engine.ts, the trainer's code path): the new
 *     state equals it to 1e-5 relative per tensor.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { UNetConfig } from '../../src/diffusion/config.js';
import { modelParamSpecs } from '../../src/diffusion/arch.js';
import { CHECKPOINT_FORMAT, CheckpointConfig } from '../../src/diffusion/checkpoint.js';
import { TrainBatch, prepareBatch } from '../../src/diffusion/grad.js';
import { FlatLayout, flatLayout, joinFlat } from '../../src/diffusion/model.js';
import { DEFAULT_OBJECTIVE } from '../../src/diffusion/objective.js';
import { AdamW, AdamWConfig, clipGradNorm, emaDecay, emaUpdate } from '../../src/diffusion/optim.js';
import { getPreset } from '../../src/diffusion/presets.js';
import { DEFAULT_SCHEDULE, makeSchedule } from '../../src/diffusion/schedule.js';
import { StepSettings, TfjsTrainEngine, TrainState } from '../../src/diffusion/train-engine.js';
import { OnnxGradSession, OnnxTrainEngine, OnnxTrainer } from '../../src/engine/onnx-train.js';
import { Rng } from '../../src/util/rng.js';
import { ensureWasm } from '../helpers/backend.js';
import { once, randomParams, requireOrt } from './helpers.js';

const ready = once(async () => {
  await ensureWasm();
  await requireOrt();
});

const C: UNetConfig = getPreset('mnist-tiny').model;
// large lr and weight decay so that decay, bias correction and the update are all visible
const ADAM: AdamWConfig = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
const ROWS = 4;
const layout: FlatLayout = flatLayout(modelParamSpecs(C));
const schedule = makeSchedule(DEFAULT_SCHEDULE);
const config: CheckpointConfig = { format: CHECKPOINT_FORMAT, model: C, schedule: DEFAULT_SCHEDULE, objective: DEFAULT_OBJECTIVE };

function batch(seed: number): TrainBatch {
  const rng = new Rng(seed);
  const D = C.sampleSize * C.sampleSize * C.inChannels;
  return {
    x0: rng.normals(ROWS * D), eps: rng.normals(ROWS * D), t: Int32Array.from({ length: ROWS }, () => rng.int(1000)),
    labels: Int32Array.from({ length: ROWS }, (_, i) => (i === 0 ? C.numClasses : rng.int(C.numClasses))),
  };
}

/** A state as after 6 updates: moments of the gradient's scale, EMA near the weights. */
function midRunState(seed: number, gScale: number): TrainState {
  const rng = new Rng(seed);
  const params = joinFlat(layout, randomParams(C, seed));
  const n = params.length;
  return {
    params,
    ema: params.map((p) => p + 0.01 * rng.normal()),
    m: Float32Array.from({ length: n }, () => gScale * rng.normal()),
    v: Float32Array.from({ length: n }, () => gScale * gScale * (0.2 + rng.normal() ** 2)),
    adamStep: 6,
  };
}
const copy = (s: TrainState): TrainState => ({ params: s.params.slice(), ema: s.ema.slice(), m: s.m.slice(), v: s.v.slice(), adamStep: s.adamStep });
const SLOTS = ['params', 'm', 'v', 'ema'] as const;

/** worst per-tensor relative L2 error of got against ref, over the layout */
function worstRel(got: Float32Array, ref: Float32Array, base?: Float32Array): { name: string; rel: number } {
  let worst = { name: '', rel: 0 };
  layout.specs.forEach((s, i) => {
    const o = layout.offsets[i], n = s.shape.reduce((a, b) => a * b, 1);
    let dd = 0, rr = 0;
    for (let k = o; k < o + n; k++) {
      const r = base ? ref[k] - base[k] : ref[k], g = base ? got[k] - base[k] : got[k];
      dd += (g - r) ** 2; rr += r * r;
    }
    assert.ok(rr > 0, `${s.name}: reference is zero, the comparison cannot fail`);
    const rel = Math.sqrt(dd / rr);
    if (rel > worst.rel) worst = { name: s.name, rel };
  });
  return worst;
}

/**
 * The change a step made must match too, not just the new values (a wrong decay or bias
 * correction hides in the values' rounding): per tensor, |got - ref| <= 1e-4 |ref - before|
 * plus float32 rounding of the values themselves (a few ulps: v moves by only 1 - beta2).
 */
function checkUpdate(slot: string, got: Float32Array, ref: Float32Array, before: Float32Array): void {
  layout.specs.forEach((s, i) => {
    const o = layout.offsets[i], n = s.shape.reduce((a, b) => a * b, 1);
    let dd = 0, du = 0, rr = 0;
    for (let k = o; k < o + n; k++) { dd += (got[k] - ref[k]) ** 2; du += (ref[k] - before[k]) ** 2; rr += ref[k] ** 2; }
    assert.ok(du > 0, `${slot} ${s.name}: the step changed nothing, the comparison cannot fail`);
    const bound = 1e-4 * Math.sqrt(du) + 4 * 2 ** -24 * Math.sqrt(rr);
    assert.ok(Math.sqrt(dd) <= bound, `${slot} ${s.name}: |got - ref| ${Math.sqrt(dd).toExponential(2)} for an update of ${Math.sqrt(du).toExponential(2)}`);
  });
}

const rms = (v: Float32Array) => Math.sqrt(v.reduce((a, x) => a + x * x, 0) / v.length);

for (const clip of [true, false]) {
  test(`in-graph clip/AdamW/EMA = optim.ts on the same gradient (clipping ${clip ? 'active' : 'off'})`, async () => {
    await ready();
    const b = batch(21);
    const { xt, target, w } = prepareBatch(schedule, DEFAULT_OBJECTIVE, b);
    const gb = { xt, t: b.t, labels: b.labels, target, w };
    const s0 = midRunState(22, 1);
    const gs = await OnnxGradSession.create(C, layout, ROWS, undefined, { threads: 1 });
    const { grad, loss } = await gs.lossAndGrad(s0.params, gb);
    await gs.release();
    const s = midRunState(22, rms(grad));
    // reference: trainer.ts's order with optim.ts
    const ref = copy(s);
    const g = grad.slice();
    let n2 = 0;
    for (const x of g) n2 += x * x;
    const maxNorm = clip ? 0.5 * Math.sqrt(n2) : 0;
    const norm = clipGradNorm(g, maxNorm);
    const adam = new AdamW(g.length, ADAM);
    adam.m = ref.m; adam.v = ref.v; adam.t = ref.adamStep;
    const lr = 0.7 * ADAM.lr; // as under warm-up: the step's lr, not the config's
    adam.step(ref.params, g, lr);
    emaUpdate(ref.ema, ref.params, emaDecay(0.999, adam.t - 1));
    // onnx
    const tr = await OnnxTrainer.create(C, layout, ADAM, ROWS, undefined, { threads: 1 });
    try {
      tr.setState({ p: s.params, m: s.m, v: s.v, ema: s.ema });
      const r = await tr.step(gb, { lr, step: s.adamStep + 1, maxNorm, emaDecay: emaDecay(0.999, s.adamStep) });
      assert.ok(Math.abs(r.loss - loss) <= 1e-6 * loss, `loss ${r.loss} vs ${loss}`);
      assert.ok(Math.abs(r.gradNorm - norm) <= 1e-5 * norm, `grad norm ${r.gradNorm} vs ${norm}`);
      const got = { p: new Float32Array(g.length), m: new Float32Array(g.length), v: new Float32Array(g.length), ema: new Float32Array(g.length) };
      tr.readState(got);
      const gotS: TrainState = { params: got.p, m: got.m, v: got.v, ema: got.ema, adamStep: 0 };
      for (const k of SLOTS) {
        const val = worstRel(gotS[k], ref[k]);
        assert.ok(val.rel < 1e-6, `${k} ${val.name}: relative error ${val.rel.toExponential(2)}`);
        checkUpdate(k, gotS[k], ref[k], s[k]);
      }
    } finally {
      await tr.release();
    }
  });
}

test('one training step on onnx = the tfjs trainer step (clip, AdamW, EMA) to 1e-5 per tensor', async () => {
  await ready();
  const b = batch(31);
  const probe = await OnnxGradSession.create(C, layout, ROWS, undefined, { threads: 1 });
  const s0 = midRunState(32, 1);
  const { xt, target, w } = prepareBatch(schedule, DEFAULT_OBJECTIVE, b);
  const { grad } = await probe.lossAndGrad(s0.params, { xt, t: b.t, labels: b.labels, target, w });
  await probe.release();
  let n2 = 0;
  for (const x of grad) n2 += x * x;
  const s = midRunState(32, rms(grad));
  const settings: StepSettings = { lr: ADAM.lr, gradClip: 0.5 * Math.sqrt(n2), emaDecay: 0.999 };
  const common = { config, adam: ADAM, rows: ROWS, workers: 1, backend: 'wasm' as const, threads: 1 };
  const tf = await TfjsTrainEngine.create({ ...common, state: copy(s) });
  const ox = await OnnxTrainEngine.create({ ...common, state: copy(s) });
  try {
    const a = await tf.step(b, settings), c = await ox.step(b, settings);
    assert.ok(Math.abs(a.loss - c.loss) <= 1e-5 * a.loss, `loss ${c.loss} vs tfjs ${a.loss}`);
    assert.ok(Math.abs(a.gradNorm - c.gradNorm) <= 1e-4 * a.gradNorm, `grad norm ${c.gradNorm} vs tfjs ${a.gradNorm}`);
    assert.ok(a.gradNorm > settings.gradClip, 'clipping must be active');
    const ref = tf.state(), got = ox.state();
    assert.is(got.adamStep, 7);
    assert.is(ref.adamStep, 7);
    for (const k of SLOTS) {
      const val = worstRel(got[k], ref[k]);
      assert.ok(val.rel < 1e-5, `${k} ${val.name}: relative error ${val.rel.toExponential(2)} against tfjs`);
    }
    const upd = worstRel(got.params, ref.params, s.params); // the two gradients differ by ~1e-5..1e-4
    assert.ok(upd.rel < 1e-3, `params update ${upd.name}: relative error ${upd.rel.toExponential(2)} against tfjs`);
    // a second step from the new state: the step count and the EMA warm-up advance alike
    const b2 = batch(33);
    await tf.step(b2, settings); await ox.step(b2, settings);
    const val = worstRel(ox.state().params, tf.state().params);
    assert.ok(val.rel < 1e-5, `second step params ${val.name}: ${val.rel.toExponential(2)}`);
  } finally {
    await tf.close();
    await ox.close();
  }
});

test('a non-finite loss leaves the onnx state unchanged (as the tfjs engine never applies it)', async () => {
  await ready();
  const s = midRunState(41, 1e-2);
  const ox = await OnnxTrainEngine.create({ config, adam: ADAM, rows: ROWS, workers: 1, backend: 'wasm', threads: 1, state: copy(s) });
  try {
    const b = batch(42);
    b.x0[5] = NaN;
    const r = await ox.step(b, { lr: ADAM.lr, gradClip: 1, emaDecay: 0.999 });
    assert.ok(!Number.isFinite(r.loss), `loss should be NaN, is ${r.loss}`);
    const got = ox.state();
    assert.is(got.adamStep, s.adamStep);
    for (const k of SLOTS) assert.ok(Buffer.from(got[k].buffer).equals(Buffer.from(s[k].buffer)), `${k} changed`);
    const ok = await ox.step(batch(43), { lr: ADAM.lr, gradClip: 1, emaDecay: 0.999 });
    assert.ok(Number.isFinite(ok.loss));
    assert.is(ox.state().adamStep, s.adamStep + 1);
  } finally {
    await ox.close();
  }
});

test.run();
