/**
 * The `controller` corrector: no gradient path through a rollout, a short DAgger fit that beats
 * the identity on held-out one-step pairs, identity before fitting, shape/range/determinism, and
 * the fitted folder (round trip, refusal of another model).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { tinyVideoPipeline } from '../helpers/video.js';
import { rejectsDriftlab, tempDir, throwsDriftlab } from '../helpers/common.js';
import { clipWindow } from '../../src/video/clips.js';
import { rollout } from '../../src/video/rollout.js';
import type { Pipeline } from '../../src/diffusion/pipeline.js';
import type { Denoiser } from '../../src/diffusion/samplers.js';
import { makeCorrector } from '../../src/drift/correctors/index.js';
import { ControllerCorrector, collectPairs } from '../../src/drift/correctors/controller.js';
import { ControllerTrainer, controllerLoss, evalLoss, initControllerParams } from '../../src/drift/controller-net.js';
import { correctorContext } from '../../src/drift/context.js';
import type { ClipSet, CorrectorContext } from '../../src/drift/corrector.js';
import { MovingMnist } from '../../datasets/moving-mnist/index.js';
import { Rng } from '../../src/util/rng.js';

const dir = tempDir('driftlab-controller-');
const S = 16, K = 3, F = 6;
/** small enough for a test: 2 rounds x 8 clips x 3 frames, 4 DDIM steps */
const SMALL = { rounds: 2, rolloutFrames: 3, clips: 8, epochs: 15, steps: 4, batch: 16, lr: 3e-3 };

const tiny = tinyVideoPipeline(dir);
const pipeline = tiny.pipeline;
const ckpt = tiny.ckpt;

/** m real clips of t frames, [m,t,S,S] in [-1,1], as fit-corrector builds them. */
function clipSet(p: Pipeline, m: number, t: number, split: 'train' | 'test', seed = 0): ClipSet {
  const data = (p.config.training as any).data;
  const mm = new MovingMnist({ ...data, split }, seed);
  const out: ClipSet = { data: new Float32Array(m * t * S * S), m, t, s: S };
  for (let k = 0; k < m; k++) out.data.set(clipWindow(mm, data.pool, k, t), k * t * S * S);
  return out;
}

const ctxOf = (p: Pipeline, over: Partial<CorrectorContext> = {}): CorrectorContext => ({ ...correctorContext(p, new Rng(0), K), ...over });
const tanhNoise = (seed: number, n: number) => new Rng(seed).normals(n).map((v) => Math.tanh(v));
const hist = (ctx: Float32Array, n: number) => ({ generated: 0, recent: (j: number) => [0, 1, 2].slice(3 - j).map((i) => ({ data: ctx.slice(i * n * 256, (i + 1) * n * 256), n, s: S })) });

let fitted: ControllerCorrector | null = null;
async function fittedController(): Promise<ControllerCorrector> {
  if (fitted) return fitted;
  const p = await pipeline();
  const c = makeCorrector('controller', ctxOf(p), SMALL) as ControllerCorrector;
  await c.fit(clipSet(p, 16, 8, 'train'), { pipeline: p, seed: 7, quiet: true });
  return (fitted = c);
}

test('no gradient reaches the rollout: collection runs tape-off on host arrays; the loss has no path into the model', async () => {
  const p = await pipeline();
  const modelVars = [...p.model.vars.values()];
  const before = p.model.getFlat();
  // (a) every model call during collection happens with the gradient tape off, and what comes
  // back is plain host data
  const depths: number[] = [];
  const spy: Denoiser = (x, t, l) => { depths.push((tf.engine() as any).state.gradientDepth); return p.net(x, t, l); };
  const c = new ControllerCorrector(ctxOf(p), SMALL);
  const pairs = await collectPairs(clipSet(p, 4, 6, 'train'), {
    net: spy, schedule: p.schedule, prediction: p.config.objective.prediction, frames: F, contextFrames: K, size: S,
    params: c.params, net2: c.net, clipIndices: [0, 1, 2, 3], rolloutFrames: 3, steps: 2, sampler: 'ddim', rng: new Rng(1),
  });
  assert.ok(depths.length > 0 && depths.every((d) => d === 0), `model called with the tape on: ${depths}`);
  assert.instance(pairs.inputs, Float32Array);
  assert.instance(pairs.targets, Float32Array);
  assert.is(pairs.count, 12);
  assert.is(pairs.inputs.length, 12 * S * S * (K + 1));
  // the rollouts' eta reaches the sampler: eta 1 draws other frames than the default eta 0
  const collect = (eta?: number) => collectPairs(clipSet(p, 4, 6, 'train'), {
    net: p.net, schedule: p.schedule, prediction: p.config.objective.prediction, frames: F, contextFrames: K, size: S,
    params: null, net2: c.net, clipIndices: [0, 1], rolloutFrames: 2, steps: 2, sampler: 'ddim', rng: new Rng(1), ...(eta === undefined ? {} : { eta }),
  });
  const [e0, e0b, e1] = [await collect(), await collect(0), await collect(1)];
  assert.equal(Array.from(e0.inputs), Array.from(e0b.inputs));
  assert.ok(e1.inputs.some((v, i) => v !== e0.inputs[i]), 'eta 1 gave the same rollouts as eta 0');
  assert.is(new ControllerCorrector(ctxOf(p)).fitCfg.eta, 1, 'the fit collects at the rollouts\' default eta');
  throwsDriftlab(() => new ControllerCorrector(ctxOf(p), { eta: -0.5 }), /controller: "eta" must be a DDIM eta in \[0, 1\], got -0.5/);

  // (b) gradients of the controller's one-step loss over ALL trainable variables, the video
  // model's included: only the controller's variables get one
  const trainer = new ControllerTrainer(c.net, initControllerParams(c.net, new Rng(3)), { lr: 1e-3, weightDecay: 0, batch: 12, gradClip: 1 });
  try {
    const x = tf.tensor4d(pairs.inputs, [12, S, S, K + 1]), y = tf.tensor4d(pairs.targets, [12, S, S, 1]);
    const { value, grads } = tf.variableGrads(() => controllerLoss(trainer.vars, c.net, x, y), [...trainer.varList, ...modelVars]);
    for (const v of trainer.varList) assert.ok(grads[v.name], `controller variable ${v.name} got no gradient`);
    const last = grads[trainer.vars.get(`conv${c.net.layers - 1}.weight`)!.name]!;
    assert.ok(tf.max(tf.abs(last)).dataSync()[0] > 0, 'the last conv gradient is zero');
    for (const v of modelVars) assert.ok(grads[v.name] == null, `model variable ${v.name} received a gradient`);
    value.dispose(); tf.dispose(Object.values(grads) as tf.Tensor[]);

    // positive control: had the controller's input been produced by the model inside the tape
    // (backpropagation through one rollout step), the model's variables would get gradients:
    // the check above can see a leak
    const ctx = tf.tensor4d(pairs.inputs, [12, S, S, K + 1]).slice([0, 0, 0, 1], [4, S, S, K]);
    const leak = tf.variableGrads(() => {
      const window = tf.concat([ctx.transpose([0, 3, 1, 2]).reshape([4, K, S, S, 1]), tf.zeros([4, F - K, S, S, 1])], 1).reshape([4 * F, S, S, 1]) as tf.Tensor4D;
      const out = p.model.forward(window, tf.fill([4 * F], 10) as tf.Tensor1D).reshape([4, F, S, S, 1]);
      const gen = tf.slice(out, [0, K, 0, 0, 0], [4, 1, S, S, 1]).reshape([4, S, S, 1]);
      return controllerLoss(trainer.vars, c.net, tf.concat([gen, ctx], 3) as tf.Tensor4D, y.slice([0, 0, 0, 0], [4, S, S, 1]));
    }, [...trainer.varList, ...modelVars]);
    assert.ok(modelVars.some((v) => leak.grads[v.name] != null), 'positive control: a taped model call should reach the model variables');
    leak.value.dispose(); tf.dispose(Object.values(leak.grads) as tf.Tensor[]);
    tf.dispose([x, y, ctx]);
  } finally {
    trainer.dispose();
  }
  // and a whole fit leaves the model's weights untouched
  await fittedController();
  assert.equal(Array.from(p.model.getFlat()), Array.from(before), 'fitting changed the video model');
});

test('a short DAgger fit lowers the one-step loss on held-out pairs below the identity', async () => {
  const p = await pipeline();
  const c = await fittedController();
  assert.is(c.stats.length, 2);
  assert.is(c.stats[1].pairs, 2 * 8 * 3, 'pairs aggregate over rounds');
  // held out: other (test-split) clips, rolled out with the identity as in round 1
  const held = await collectPairs(clipSet(p, 6, 6, 'test', 3), {
    net: p.net, schedule: p.schedule, prediction: p.config.objective.prediction, frames: F, contextFrames: K, size: S,
    params: null, net2: c.net, clipIndices: [0, 1, 2, 3, 4, 5], rolloutFrames: 3, steps: 4, sampler: 'ddim', rng: new Rng(11),
  });
  const id = evalLoss(initControllerParams(c.net, new Rng(0)), c.net, held.inputs, held.targets, S);
  const ctl = evalLoss(c.params, c.net, held.inputs, held.targets, S);
  assert.ok(ctl < 0.8 * id, `held-out one-step mse: controller ${ctl.toFixed(4)} vs identity ${id.toFixed(4)}`);
});

test('the untrained controller is the identity', async () => {
  const p = await pipeline();
  const c = makeCorrector('controller', ctxOf(p));
  const ctx = tanhNoise(5, 2 * 3 * 256);
  const frame = { data: tanhNoise(6, 512), n: 2, s: S };
  const r = await c.correct(frame, hist(ctx, 2), 0);
  assert.equal(Array.from(r.data), Array.from(frame.data));
  assert.ok(r.data !== frame.data, 'correct() must return a new array');
});

test('shapes, range, determinism under a seed, no leaked tensors', async () => {
  const p = await pipeline();
  const c = await fittedController();
  const ctx = tanhNoise(5, 2 * 3 * 256).map((v) => 3 * v); // out-of-range input still gives [-1,1]
  const frame = { data: tanhNoise(6, 512).map((v) => 2 * v), n: 2, s: S };
  const n0 = tf.memory().numTensors;
  const a = await c.correct(frame, hist(ctx, 2), 0), b = await c.correct(frame, hist(ctx, 2), 1);
  assert.is(tf.memory().numTensors, n0, 'correct() leaked tensors');
  assert.is(a.n, 2); assert.is(a.s, S); assert.is(a.data.length, 512);
  assert.ok(a.data.every((v) => v >= -1 && v <= 1), 'out of range');
  assert.equal(Array.from(a.data), Array.from(b.data));
  assert.ok(a.data.some((v, i) => v !== Math.max(-1, Math.min(1, frame.data[i]))), 'the fitted controller is still the identity');
  // fitting is deterministic under a seed (weights, rollouts and minibatch order all seeded)
  const tiny = { rounds: 2, rolloutFrames: 2, clips: 3, epochs: 2, steps: 2, batch: 4 };
  const clips = clipSet(p, 6, 5, 'train');
  const fits: Float32Array[] = [];
  for (const seed of [1, 1, 2]) {
    const m0 = tf.memory().numTensors;
    const f = new ControllerCorrector(ctxOf(p), tiny);
    await f.fit(clips, { seed, quiet: true });
    assert.is(tf.memory().numTensors, m0, 'fit() leaked tensors');
    fits.push(Float32Array.from([...f.params.values()].flatMap((v) => Array.from(v))));
  }
  assert.equal(Array.from(fits[0]), Array.from(fits[1]), 'same seed, different controller');
  assert.ok(fits[0].some((v, i) => v !== fits[2][i]), 'the seed has no effect');
});

test('save/load round trip; a folder fitted for another model or frame size is refused', async () => {
  const p = await pipeline();
  const c = await fittedController();
  const out = path.join(dir, 'fitted');
  await c.save(out);
  const d = makeCorrector('controller', ctxOf(p), { dir: out }) as ControllerCorrector;
  assert.is((d.describe() as any).dir, out);
  await d.load!(out);
  assert.ok(d.fitted);
  const ctx = tanhNoise(8, 2 * 3 * 256), frame = { data: tanhNoise(9, 512), n: 2, s: S };
  assert.equal(Array.from((await d.correct(frame, hist(ctx, 2), 0)).data), Array.from((await c.correct(frame, hist(ctx, 2), 0)).data));
  await rejectsDriftlab(makeCorrector('controller', ctxOf(p, { modelId: '0123456789abcdef' })).load!(out), /^\S+: corrector folder fitted for another model/);
  await rejectsDriftlab(makeCorrector('controller', ctxOf(p, { size: 32 })).load!(out), /corrector folder fitted for another model/);
  await rejectsDriftlab(makeCorrector('controller', ctxOf(p)).load!(path.join(dir, 'nothing-here')), /holds no fitted controller/);
  // a folder fitted before "eta" existed collected its rollouts at eta 0
  assert.is(JSON.parse(fs.readFileSync(path.join(out, 'controller.json'), 'utf8')).fit.eta, c.fitCfg.eta);
  const legacy = path.join(dir, 'fitted-legacy');
  fs.cpSync(out, legacy, { recursive: true });
  const meta = JSON.parse(fs.readFileSync(path.join(legacy, 'controller.json'), 'utf8'));
  delete meta.fit.eta;
  fs.writeFileSync(path.join(legacy, 'controller.json'), JSON.stringify(meta));
  const old = makeCorrector('controller', ctxOf(p), { dir: legacy }) as ControllerCorrector;
  await old.load!(legacy);
  assert.is(old.fitCfg.eta, 0);
  // and it drives a real rollout
  const rng = new Rng(1).fork('corrector');
  const r = await rollout({
    pipeline: p, corrector: d, out: path.join(dir, 'rollout'), checkpoint: ckpt, correctorRng: rng, quiet: true,
    rollouts: 2, horizon: 3, context: K, chunk: 1, sampler: 'ddim', steps: 2, eta: 0, seed: 1,
  });
  assert.is(r.frames, K + 3);
});

test.run();
