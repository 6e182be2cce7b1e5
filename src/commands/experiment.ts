/** driftlab experiment NAME: the reproducible studies of experiments/ (results/<name>/<run-id>/). */
import type { CommandModule } from 'yargs';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { TRAIN_ENGINES, type TrainEngineChoice } from '../diffusion/train-engine.js';
import * as path from 'node:path';
import { initBackend, BackendName } from '../backend.js';
import { DriftlabError } from '../util/errors.js';
import { parseCorrectorConfig, positiveInt } from './common.js';
import { parseIntList } from './drift.js';
import { listCorrectors } from '../drift/correctors/index.js';
import { resolveCorrectors } from '../drift/external.js';
import { VIDEO_ETA } from '../video/sample-clip.js';

const list = (s: string) => String(s).split(',').map((v) => Number(v.trim())).filter((v) => Number.isFinite(v));
const log = (l: string) => process.stderr.write(`${l}\n`);

const guidance: CommandModule<any, any> = {
  command: 'guidance-sweep',
  describe: 'classifier-free guidance scale against FID and classifier accuracy',
  builder: (y) => y
    .option('ckpt', { type: 'string', describe: 'class-conditional image checkpoint (default: the shipped mnist-small)' })
    .option('scales', { type: 'string', default: '1,1.5,2,3,4,6', describe: 'guidance scales, comma-separated' })
    .option('n', { type: 'number', default: 1000 })
    .option('steps', { type: 'number', default: 50 })
    .option('engine', { choices: ['auto', 'tfjs', 'onnx'], default: 'auto' })
    .option('root', { type: 'string', default: 'results' }),
  handler: async (a) => {
    await initBackend(a.backend as BackendName);
    const { guidanceSweep } = await import('../../experiments/guidance-sweep.js');
    const { DEFAULT_IMAGE_CKPT } = await import('./quickstart.js');
    const scales = list(a.scales);
    if (!scales.length) throw new DriftlabError(`--scales must list numbers, got ${a.scales}`);
    const r = await guidanceSweep({ ckpt: a.ckpt ?? DEFAULT_IMAGE_CKPT, scales, n: positiveInt('n', a.n), steps: positiveInt('steps', a.steps), seed: a.seed, engine: a.engine, root: a.root, log });
    process.stdout.write(`results: ${r.dir}\n`);
  },
};

/** what trains the models of an experiment (what samples from them is --engine) */
const trainEngineOptions = (y: any, what: string) => y
  .option('train-engine', { choices: TRAIN_ENGINES, default: 'auto', describe: `what trains ${what}: onnx (one onnxruntime training graph), tfjs, or auto (onnx where onnxruntime-node loads)` })
  .option('train-threads', { type: 'number', describe: 'onnx training: intra-op threads per session (default: cores / --workers, at least 1)' });
const trainEngineOf = (a: any) => ({
  trainEngine: a.trainEngine as TrainEngineChoice, trainThreads: a.trainThreads === undefined ? undefined : positiveInt('train-threads', a.trainThreads),
});

const schedule: CommandModule<any, any> = {
  command: 'schedule-ablation',
  describe: 'train with linear and cosine schedules (all else fixed) and compare FID at several step counts',
  builder: (y) => trainEngineOptions(y, 'each schedule')
    .option('preset', { type: 'string', default: 'mnist-small' })
    .option('train-steps', { type: 'number', default: 3000, describe: 'training steps per schedule' })
    .option('minutes', { type: 'number', describe: 'or a time budget per schedule' })
    .option('step-counts', { type: 'string', default: '10,25,50,100,250,1000' })
    .option('n', { type: 'number', default: 1000 })
    .option('guidance', { type: 'number', default: 2 })
    .option('workers', { type: 'number', default: os.availableParallelism(), describe: 'training: data-parallel workers (tfjs backends, or onnx gradient sessions; 1 = one in-process step)' })
    .option('engine', { choices: ['auto', 'tfjs', 'onnx'], default: 'auto', describe: 'what samples for FID' })
    .option('root', { type: 'string', default: 'results' })
    .option('resume', { type: 'string', describe: 'continue an earlier run folder results/schedule-ablation/<run-id>/ (finished training and FID rows are reused)' }),
  handler: async (a) => {
    await initBackend(a.backend as BackendName);
    const { scheduleAblation } = await import('../../experiments/schedule-ablation.js');
    const r = await scheduleAblation({
      preset: a.preset, trainSteps: positiveInt('train-steps', a.trainSteps), minutes: a.minutes, stepCounts: list(a.stepCounts),
      n: positiveInt('n', a.n), guidance: a.guidance, seed: a.seed, workers: positiveInt('workers', a.workers), backend: a.backend, engine: a.engine, root: a.root, log,
      resume: a.resume as string | undefined, ...trainEngineOf(a),
    });
    process.stdout.write(`results: ${r.dir}\n`);
  },
};

/** options shared by the video experiments: the drift measurement of each trained model */
const driftOptions = (y: any) => y
  .option('horizon', { type: 'number', default: 200, describe: 'frames per rollout' })
  .option('rollouts', { type: 'number', default: 4 })
  .option('steps', { type: 'number', default: 20, describe: 'DDIM steps per model call' })
  .option('ref-frames', { type: 'number', default: 2000 })
  .option('ref-clips', { type: 'number', default: 500 })
  .option('engine', { choices: ['auto', 'tfjs', 'onnx'], default: 'auto' })
  .option('root', { type: 'string', default: 'results' });

const trainOptions = (y: any) => trainEngineOptions(driftOptions(y), 'each arm')
  .option('preset', { type: 'string', default: 'mmnist-small', describe: 'video preset of every arm' })
  .option('train-steps', { type: 'number', default: 1000, describe: 'training steps per arm (equal compute)' })
  .option('batch-size', { type: 'number', describe: 'clips per step (default: the preset\'s)' })
  .option('workers', { type: 'number', default: os.availableParallelism(), describe: 'training: data-parallel workers (tfjs backends, or onnx gradient sessions; 1 = one in-process step)' })
  .option('resume', { type: 'string', describe: 'continue an earlier run folder results/<name>/<run-id>/ (trained models and rollouts are reused)' });

const budget = (a: any) => ({
  preset: a.preset, trainSteps: positiveInt('train-steps', a.trainSteps), batchSize: a.batchSize === undefined ? undefined : positiveInt('batch-size', a.batchSize),
  workers: positiveInt('workers', a.workers), backend: a.backend, seed: a.seed, horizon: positiveInt('horizon', a.horizon), rollouts: positiveInt('rollouts', a.rollouts),
  steps: positiveInt('steps', a.steps), engine: a.engine, refFrames: positiveInt('ref-frames', a.refFrames), refClips: positiveInt('ref-clips', a.refClips), root: a.root, log,
  resume: a.resume as string | undefined, ...trainEngineOf(a),
});

const driftVsHorizon: CommandModule<any, any> = {
  command: 'drift-vs-horizon',
  describe: 'every corrector rolled out from the same frames: drift curves and a table at frames 10, 100, 1000 (10000)',
  builder: (y) => driftOptions(y)
    .option('ckpt', { type: 'string', describe: 'video checkpoint (default: the shipped mmnist-small)' })
    .option('correctors', { type: 'string', default: 'none,renoise,kalman,controller', describe: `comma-separated (a+b chains): ${listCorrectors().map((c) => c.name).join(', ')}, or a module file/package` })
    .option('horizon', { type: 'number', default: 1000, describe: 'frames per rollout' })
    .option('chunk', { type: 'number', default: 1, describe: 'frames kept per model call' })
    .option('eta', { type: 'number', default: VIDEO_ETA, describe: 'DDIM eta: 0 deterministic, 1 DDPM-like noise (the video default: it tracks longer, docs/EXPERIMENTS.md "Sampler noise")' })
    .option('corrector-config', { type: 'string', describe: 'JSON per corrector, as for driftlab drift: {"history-guidance": {"w": 1.5}, "anchor": {"t": 200, "strength": 0.5}}' })
    .option('fit-clips', { type: 'number', default: 200, describe: 'real clips to fit a corrector on when it has no fitted folder' })
    .option('fvd-horizons', { type: 'string', default: '0,100,1000,10000', describe: 'frames where FVD windows start (those that do not fit are skipped)' }),
  handler: async (a) => {
    await initBackend(a.backend as BackendName);
    const { driftVsHorizon: run } = await import('../../experiments/drift-vs-horizon.js');
    const { DEFAULT_VIDEO_CKPT } = await import('./demo.js');
    const r = await run({
      ckpt: a.ckpt ?? DEFAULT_VIDEO_CKPT, correctors: await resolveCorrectors(String(a.correctors).split(',').map((s) => s.trim()).filter(Boolean)),
      horizon: positiveInt('horizon', a.horizon), rollouts: positiveInt('rollouts', a.rollouts), steps: positiveInt('steps', a.steps), eta: a.eta, chunk: positiveInt('chunk', a.chunk), seed: a.seed,
      engine: a.engine, root: a.root, refFrames: positiveInt('ref-frames', a.refFrames), refClips: positiveInt('ref-clips', a.refClips), log,
      correctorConfig: parseCorrectorConfig(a.correctorConfig), fvdHorizons: parseIntList('fvd-horizons', a.fvdHorizons), fitClips: positiveInt('fit-clips', a.fitClips),
    });
    process.stdout.write(r.table + `results: ${r.dir}\n`);
  },
};

const contextNoise: CommandModule<any, any> = {
  command: 'context-noise-sweep',
  describe: 'train-time context noise level against drift (one model per level, equal steps)',
  builder: (y) => trainOptions(y).option('levels', { type: 'string', default: '0,100,300', describe: 'context noise levels L (t ~ U{0..L})' })
    .option('init-image', { type: 'string', describe: 'image checkpoint that initialises every arm (default: from scratch)' }),
  handler: async (a) => {
    await initBackend(a.backend as BackendName);
    const { contextNoiseSweep } = await import('../../experiments/context-noise-sweep.js');
    const levels = list(a.levels);
    if (!levels.length || levels.some((l) => !Number.isInteger(l) || l < 0)) throw new DriftlabError(`--levels must list integers >= 0, got ${a.levels}`);
    const r = await contextNoiseSweep({ ...budget(a), levels, initImage: a.initImage });
    process.stdout.write(`results: ${r.dir}\n`);
  },
};

const imageToVideo: CommandModule<any, any> = {
  command: 'image-to-video',
  describe: 'video model started from the MNIST image model vs from scratch at equal compute; per-frame drift of each',
  builder: (y) => trainOptions(y)
    .option('init-image', { type: 'string', describe: 'image checkpoint (default: the shipped mnist-small for mmnist-small, else one trained here)' })
    .option('image-steps', { type: 'number', default: 300, describe: 'steps of the image model trained here when there is none' }),
  handler: async (a) => {
    await initBackend(a.backend as BackendName);
    const { imageToVideo: run } = await import('../../experiments/image-to-video.js');
    const { DEFAULT_IMAGE_CKPT } = await import('./quickstart.js');
    const r = await run({ ...budget(a), initImage: a.initImage, imageSteps: positiveInt('image-steps', a.imageSteps), defaultImage: DEFAULT_IMAGE_CKPT });
    process.stdout.write(`results: ${r.dir}\n`);
  },
};

const videoRecipe: CommandModule<any, any> = {
  command: 'video-recipe',
  describe: 'video recipes (conditioning, prediction target, weighting, dropout) at equal wall time: context use, trajectory error at frames 1/10/50, tracking horizon',
  builder: (y) => trainOptions(y)
    .option('arms', { type: 'string', default: 'attn-eps,attn-v,concat-eps,concat-v,concat-v-minsnr,concat-v-drop', describe: 'comma-separated recipes: a trunk (attn, attn-full, concat, concat2, concat2-attn), a target (-eps, -v, -x0) and flags (-minsnr, -drop, -df, -cnL context noise up to t = L); see experiments/video-recipe.ts' })
    .option('minutes', { type: 'number', default: 25, describe: 'training wall time per arm (equal wall time); 0 = use --train-steps instead' })
    .option('train-steps', { type: 'number', default: 100000, describe: 'training steps per arm (a cap when --minutes is set)' })
    .option('horizon', { type: 'number', default: 50, describe: 'frames per rollout' })
    .option('rollouts', { type: 'number', default: 16 })
    .option('steps', { type: 'number', default: 10, describe: 'DDIM steps per model call' })
    .option('windows', { type: 'number', default: 16, describe: 'held-out windows of the context-use check' }),
  handler: async (a) => {
    await initBackend(a.backend as BackendName);
    const { videoRecipe: run, recipeArm } = await import('../../experiments/video-recipe.js');
    if (!(a.minutes >= 0)) throw new DriftlabError(`--minutes must be >= 0, got ${a.minutes}`);
    const arms = String(a.arms).split(',').map((s) => s.trim()).filter(Boolean);
    for (const arm of arms) recipeArm(arm); // every name checked before any arm trains
    const r = await run({ ...budget(a), minutes: a.minutes > 0 ? a.minutes : undefined, arms, windows: positiveInt('windows', a.windows) });
    process.stdout.write(fs.readFileSync(path.join(r.dir, 'table.md'), 'utf8') + `results: ${r.dir}\n`);
  },
};

/** every experiment by name (the sweep allow-list reads their options from here) */
export const EXPERIMENTS: Record<string, CommandModule<any, any>> = {
  'guidance-sweep': guidance, 'schedule-ablation': schedule, 'drift-vs-horizon': driftVsHorizon, 'context-noise-sweep': contextNoise, 'image-to-video': imageToVideo,
  'video-recipe': videoRecipe,
};

export const experimentCommand: CommandModule<any, any> = {
  command: 'experiment <name>',
  describe: 'run a reproducible study (guidance-sweep, schedule-ablation, drift-vs-horizon, context-noise-sweep, image-to-video, video-recipe); writes results/<name>/<run-id>/',
  builder: (y) => Object.values(EXPERIMENTS).reduce((acc, c) => acc.command(c), y)
    .demandCommand(1, 'name an experiment: guidance-sweep, schedule-ablation, drift-vs-horizon, context-noise-sweep, image-to-video, video-recipe'),
  handler: () => undefined,
};
