/** driftlab eval context-use: does a video checkpoint condition on its past? (src/eval/context-use.ts) */
import type { CommandModule } from 'yargs';
import { initBackend, BackendName } from '../backend.js';
import { loadPipeline } from '../diffusion/pipeline.js';
import { ENGINE_CHOICES } from '../engine/select.js';
import { DEFAULT_CONTEXT_TS, contextUse, formatContextUse } from '../eval/context-use.js';
import { DriftlabError } from '../util/errors.js';
import { positiveInt } from './common.js';

export function parseTimesteps(s: string, flag = 't'): number[] {
  const ts = String(s).split(',').map((x) => Number(x.trim()));
  if (!ts.length || ts.some((t) => !Number.isInteger(t) || t < 0)) throw new DriftlabError(`--${flag} must be comma-separated non-negative integers, got '${s}'`);
  return ts;
}

export const contextUseCommand: CommandModule<any, any> = {
  command: 'context-use',
  describe: 'target x0 error with the true, another clip\'s and a blank context (and copy-last): does the video model use its past?',
  builder: (y) => y
    .option('ckpt', { type: 'string', demandOption: true, describe: 'video checkpoint folder' })
    .option('windows', { type: 'number', default: 16, describe: 'held-out windows (test digits)' })
    .option('t', { type: 'string', default: DEFAULT_CONTEXT_TS.join(','), describe: 'noise levels of the targets, comma-separated' })
    .option('weights', { choices: ['ema', 'model'], default: 'ema', describe: 'which weights to evaluate' })
    .option('engine', { choices: ENGINE_CHOICES, default: 'auto', describe: 'forward engine' })
    .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' }),
  handler: async (a) => {
    const windows = positiveInt('windows', a.windows);
    const ts = parseTimesteps(a.t);
    await initBackend(a.backend as BackendName);
    const p = await loadPipeline(a.ckpt, a.weights, { engine: a.engine, threads: a.threads });
    try {
      const data = (p.config.training as any)?.data;
      if (!p.config.model.video) throw new DriftlabError(`${a.ckpt} is an image checkpoint; context use needs a video checkpoint`);
      if (!data) throw new DriftlabError(`${a.ckpt} does not record its Moving-MNIST settings`);
      if (!a.json) process.stderr.write(`driftlab: ${p.engine.line}\n`);
      const r = await contextUse(p.net, p.config.model, p.schedule, p.config.objective.prediction, data, { windows, ts, seed: a.seed });
      if (a.json) process.stdout.write(JSON.stringify({ checkpoint: a.ckpt, weights: a.weights, seed: a.seed, ...r }) + '\n');
      else process.stdout.write(formatContextUse(r) + '\n');
    } finally {
      await p.dispose();
    }
  },
};
