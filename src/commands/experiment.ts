/** driftlab experiment NAME: the reproducible studies of experiments/ (results/<name>/<run-id>/). */
import type { CommandModule } from 'yargs';
import * as os from 'node:os';
import { initBackend, BackendName } from '../backend.js';
import { DriftlabError } from '../util/errors.js';
import { positiveInt } from './common.js';

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

const schedule: CommandModule<any, any> = {
  command: 'schedule-ablation',
  describe: 'train with linear and cosine schedules (all else fixed) and compare FID at several step counts',
  builder: (y) => y
    .option('preset', { type: 'string', default: 'mnist-small' })
    .option('train-steps', { type: 'number', default: 3000, describe: 'training steps per schedule' })
    .option('minutes', { type: 'number', describe: 'or a time budget per schedule' })
    .option('step-counts', { type: 'string', default: '10,25,50,100,250,1000' })
    .option('n', { type: 'number', default: 1000 })
    .option('guidance', { type: 'number', default: 2 })
    .option('workers', { type: 'number', default: os.availableParallelism() })
    .option('engine', { choices: ['auto', 'tfjs', 'onnx'], default: 'auto' })
    .option('root', { type: 'string', default: 'results' }),
  handler: async (a) => {
    await initBackend(a.backend as BackendName);
    const { scheduleAblation } = await import('../../experiments/schedule-ablation.js');
    const r = await scheduleAblation({
      preset: a.preset, trainSteps: positiveInt('train-steps', a.trainSteps), minutes: a.minutes, stepCounts: list(a.stepCounts),
      n: positiveInt('n', a.n), guidance: a.guidance, seed: a.seed, workers: positiveInt('workers', a.workers), backend: a.backend, engine: a.engine, root: a.root, log,
    });
    process.stdout.write(`results: ${r.dir}\n`);
  },
};

export const experimentCommand: CommandModule<any, any> = {
  command: 'experiment <name>',
  describe: 'run a reproducible study (guidance-sweep, schedule-ablation); writes results/<name>/<run-id>/',
  builder: (y) => y.command(guidance).command(schedule).demandCommand(1, 'name an experiment: guidance-sweep, schedule-ablation'),
  handler: () => undefined,
};
