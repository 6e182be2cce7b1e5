/**
 * driftlab quickstart, a one-minute look at the shipped image model: sample a digit grid and a
 * denoising strip from the shipped checkpoint, or train from scratch for --minutes first (--train).
 */
import type { CommandModule } from 'yargs';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, BackendName } from '../backend.js';
import { generate, loadPipeline } from '../diffusion/pipeline.js';
import { getPreset } from '../diffusion/presets.js';
import { train } from '../diffusion/train.js';
import { writeFileAtomic } from '../io/atomic.js';
import { encodeNpy } from '../io/npy.js';
import { imageGrid, rasterToPng, stripGrid } from '../plot/grid.js';
import { DriftlabError } from '../util/errors.js';
import { Progress } from '../util/progress.js';
import { loadBundledMnist } from '../../datasets/mnist/index.js';
import { positiveInt, runId } from './common.js';
import { engineOption, labelsFor } from './sample.js';

/** The package root (two levels above dist/src/commands). */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DEFAULT_IMAGE_CKPT = path.join(PACKAGE_ROOT, 'checkpoints', 'mnist-small');

export const quickstartCommand: CommandModule<any, any> = {
  command: 'quickstart',
  describe: 'a one-minute look at the shipped image model: an 8x8 digit grid and a denoising strip',
  builder: (y) => y
    .option('ckpt', { type: 'string', default: DEFAULT_IMAGE_CKPT, describe: 'image checkpoint to sample from' })
    .option('train', { type: 'boolean', default: false, describe: 'train mnist-small from scratch for --minutes first' })
    .option('minutes', { type: 'number', default: 10, describe: 'training budget with --train' })
    .option('out', { type: 'string', default: 'results/quickstart', describe: 'results root; a new <run-id> folder is made inside' })
    .option('steps', { type: 'number', default: 25, describe: 'DDIM steps' })
    .option('guidance', { type: 'number', default: 2, describe: 'classifier-free guidance scale' })
    .option('workers', { type: 'number', default: os.availableParallelism(), describe: 'training workers with --train' })
    .option('engine', engineOption),
  handler: async (a) => {
    const started = Date.now();
    const dir = path.join(a.out, runId(a.seed));
    if (fs.existsSync(dir)) throw new DriftlabError(`${dir} already exists; wait a second or pass another --out`);
    const info = await initBackend(a.backend as BackendName, { quiet: !a.train });
    fs.mkdirSync(dir, { recursive: true });
    let ckpt = a.ckpt;
    if (a.train) {
      if (!(a.minutes > 0)) throw new DriftlabError(`--minutes must be > 0, got ${a.minutes}`);
      const preset = getPreset('mnist-small');
      preset.train.seed = a.seed;
      preset.train.lr = 2e-4;
      preset.train.lrWarmup = 200;
      preset.train.steps = 1_000_000;
      ckpt = path.join(dir, 'checkpoint');
      process.stderr.write(`driftlab: training mnist-small from scratch for ${a.minutes} min into ${ckpt}\n`);
      await train({ preset, data: loadBundledMnist(), out: ckpt, workers: positiveInt('workers', a.workers), backend: a.backend, minutes: a.minutes, engine: a.engine });
    } else if (!fs.existsSync(path.join(ckpt, 'config.json'))) {
      throw new DriftlabError(`no checkpoint at ${ckpt}; pass --ckpt DIR, or --train --minutes M to train one first`);
    }
    const p = await loadPipeline(ckpt, 'ema', { engine: a.engine });
    process.stderr.write(`driftlab: ${p.engine.line}\n`);
    const n = 64;
    const steps = positiveInt('steps', a.steps);
    const guidance = p.config.model.numClasses > 0 ? a.guidance : 1;
    const progress = new Progress({ total: n, label: `sample ddim-${steps}`, unit: 'img' });
    const g = await generate(p, {
      n, batch: 64, sampler: 'ddim', steps, eta: 0, guidance, labels: labelsFor(p, n, undefined), clipX0: true,
      seed: a.seed, stripColumns: 10, stripSamples: 6, onBatch: (d) => progress.tick(d - progress.count),
    });
    const S = p.config.model.sampleSize;
    const files = {
      grid: path.join(dir, 'grid.png'), strip: path.join(dir, 'strip.png'), samples: path.join(dir, 'samples.npy'), config: path.join(dir, 'run.json'),
    };
    await writeFileAtomic(files.grid, rasterToPng(imageGrid(g.images, n, S, S, { nrow: 8, scale: 2 })));
    await writeFileAtomic(files.strip, rasterToPng(stripGrid(g.strip!.rows, S, S, { labels: g.strip!.labels, scale: 2 })));
    await writeFileAtomic(files.samples, encodeNpy({ dtype: 'float32', shape: [n, S, S], data: g.images, fortranOrder: false }));
    const run = {
      command: 'quickstart', checkpoint: path.resolve(ckpt), trained: a.train, minutes: a.train ? a.minutes : undefined,
      sampler: 'ddim', steps, eta: 0, guidance, labels: 'i % 10', seed: a.seed, backend: info.line, engine: p.engine.line,
      node: process.version, seconds: (Date.now() - started) / 1000,
    };
    await writeFileAtomic(files.config, JSON.stringify(run, null, 2) + '\n');
    await p.dispose();
    process.stdout.write([
      `quickstart done in ${run.seconds.toFixed(1)} s (${p.engine.name === 'onnx' ? 'onnx' : info.backend}); results in ${dir}/`,
      `  grid   ${files.grid}   64 digits, labels 0,1,..,9,0,1,.. in reading order, DDIM ${steps} steps, guidance ${guidance}`,
      `  strip  ${files.strip}  x_t from noise (left) to sample (right)`,
      `  npy    ${files.samples}  float32 [64,${S},${S}] in [0,1]`,
      `  config ${files.config}`,
    ].join('\n') + '\n');
  },
};
