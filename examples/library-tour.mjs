// driftlab as a library, end to end on a tiny model (about a minute on a laptop CPU):
// train a Moving-MNIST video model for a few steps, continue real clips, roll it out with the
// example external corrector (blend-corrector.mjs), and score the rollout against ground truth.
//
//   node examples/library-tour.mjs [out-folder] [--steps N]
//
// Prints one JSON line with what it measured. Everything imported here is the public API.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  initBackend, getVideoPreset, trainVideo, loadPipeline, continueClips, MovingMnist, clipWindow, Rng,
  loadCorrectorModule, makeCorrector, correctorContext, rollout, runFrameMetrics, readRunArrays, summarizeAt,
  loadFeatureNet, toEncoderFrames, realFrameStats, referenceSeed, frechetFrameCurve,
} from 'driftlab';

const args = process.argv.slice(2);
const stepsAt = args.indexOf('--steps');
const steps = stepsAt >= 0 ? Number(args.splice(stepsAt, 2)[1]) : 20;
const out = path.resolve(args[0] ?? 'driftlab-tour');
fs.mkdirSync(out, { recursive: true });

await initBackend('auto', { quiet: true });

// 1. a tiny video model: 16x16 frames, 6-frame windows (3 context + 3 targets)
const preset = getVideoPreset('mmnist-tiny');
preset.train.steps = steps;
const ckpt = path.join(out, 'model');
await trainVideo({ preset, out: ckpt, workers: 1, backend: 'auto', quiet: true, overwrite: true });
const p = await loadPipeline(ckpt, 'ema', { engine: 'auto' });
const { frames: F, contextFrames: K } = p.config.model.video;
const S = p.config.model.sampleSize;

// 2. continue 2 real clips by one window: context [2, K, S, S] -> targets [2, F-K, S, S]
const mm = new MovingMnist({ ...preset.data, split: 'test' }, 0);
const context = new Float32Array(2 * K * S * S);
for (let b = 0; b < 2; b++) context.set(clipWindow(mm, preset.data.pool, b, K), b * K * S * S);
const next = await continueClips(p.net, p.schedule, p.config.objective.prediction, context, 2, K, F, S, { sampler: 'ddim', steps: 10, clipX0: true, rng: new Rng(1) });

// 3. a rollout with a corrector from a file, registered like a built-in
const name = await loadCorrectorModule(fileURLToPath(new URL('./blend-corrector.mjs', import.meta.url)));
const rng = new Rng(0).fork('corrector');
const corrector = makeCorrector(name, correctorContext(p, rng), { alpha: 0.2 });
const run = path.join(out, 'rollout');
fs.rmSync(run, { recursive: true, force: true });
await rollout({
  pipeline: p, corrector, out: run, checkpoint: ckpt, correctorRng: rng, quiet: true,
  rollouts: 2, horizon: 6, context: K, chunk: F - K, sampler: 'ddim', steps: 10, eta: 0, seed: 0,
});

// 4. drift against the simulator's ground truth: per-frame MSE, SSIM and trajectory error, and
//    the Frechet frame distance to real frames in driftlab's Moving-MNIST frame encoder
const m = await runFrameMetrics(run);
const last = m.T - 1;
const { frames, run: info } = await readRunArrays(run);
const net = await loadFeatureNet('mmnist-frame');
const toInput = (u8, count, side) => toEncoderFrames(u8, count, side, 'u8');
const ref = realFrameStats(info.data, referenceSeed(info.seed), 32, S, net, toInput);
const fd = frechetFrameCurve(frames, m.T, m.N, S, net, ref, 3, toInput);
const at = (metric) => summarizeAt(metric, m.T, m.N, [last])[0].mean;
console.log(JSON.stringify({
  engine: p.engine.name, corrector: name, window: Array.from(next.slice(0, 3), (v) => +v.toFixed(3)), frames: m.T, rollouts: m.N,
  mseLast: at(m.mse), ssimLast: at(m.ssim), trajLast: at(m.traj), frechetFrames: fd.frechet,
}));
await p.dispose();
