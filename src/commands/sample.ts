/** driftlab sample: draw digits from a checkpoint (DDPM or DDIM, classifier-free guidance). */
import type { CommandModule } from 'yargs';
import { initBackend, BackendName } from '../backend.js';
import { SAMPLERS, SamplerName, Spacing, VarianceType } from '../diffusion/samplers.js';
import { Pipeline, generate, loadPipeline } from '../diffusion/pipeline.js';
import { writeFileNoClobber } from '../io/atomic.js';
import { encodeNpy } from '../io/npy.js';
import { imageGrid, rasterToPng, stripGrid } from '../plot/grid.js';
import { ENGINE_CHOICES, EngineChoice } from '../engine/select.js';
import { DriftlabError } from '../util/errors.js';
import { Progress } from '../util/progress.js';
import { checkWritable, positiveInt } from './common.js';

export interface SampleArgs {
  n: number; batch: number; sampler: SamplerName; steps: number; eta: number; guidance: number;
  label?: string; clipX0: boolean; variance: VarianceType; spacing?: Spacing; seed: number;
}

/** Labels for n samples: --label L (all L), 'null' (null class) or by default 0,1,..,9,0,1,.. */
export function labelsFor(p: Pipeline, n: number, label: string | undefined): Int32Array | undefined {
  const K = p.config.model.numClasses;
  if (K === 0) {
    if (label !== undefined && label !== 'null') throw new DriftlabError('this checkpoint is unconditional; drop --label');
    return undefined;
  }
  if (label === 'null') return new Int32Array(n).fill(K);
  if (label !== undefined) {
    const l = Number(label);
    if (!Number.isInteger(l) || l < 0 || l >= K) throw new DriftlabError(`--label must be an integer in 0..${K - 1} or 'null', got ${label}`);
    return new Int32Array(n).fill(l);
  }
  return Int32Array.from({ length: n }, (_, i) => i % K);
}

/** --engine: shared by every forward-only command */
export const engineOption = {
  choices: ENGINE_CHOICES, default: 'auto' as EngineChoice,
  describe: 'network engine: onnx (onnxruntime-node, all cores), tfjs (the reference), auto = onnx where it loads and the model exports',
};

export function sampleBuilder(y: any) {
  return y
    .option('n', { type: 'number', default: 64, describe: 'number of samples' })
    .option('batch', { type: 'number', default: 64, describe: 'samples per forward pass' })
    .option('sampler', { choices: SAMPLERS, default: 'ddim', describe: 'ddpm (ancestral) or ddim' })
    .option('steps', { type: 'number', default: 50, describe: 'denoising steps (a strided subset of the T training steps)' })
    .option('eta', { type: 'number', default: 0, describe: 'DDIM eta: 0 deterministic, 1 DDPM-like noise' })
    .option('guidance', { type: 'number', default: 1, describe: 'classifier-free guidance scale (1 = none)' })
    .option('label', { type: 'string', describe: "class for every sample, or 'null'; default cycles 0..9" })
    .option('clip-x0', { type: 'boolean', default: true, describe: 'clip predicted x0 to [-1,1] at every step' })
    .option('variance', { choices: ['fixed_small', 'fixed_large'], default: 'fixed_small', describe: 'DDPM posterior variance' })
    .option('spacing', { choices: ['leading', 'trailing'], describe: 'timestep spacing (default trailing; leading when steps = T)' })
    .option('weights', { choices: ['ema', 'model'], default: 'ema', describe: 'which weights of the checkpoint' })
    .option('engine', engineOption)
    .option('threads', { type: 'number', describe: 'onnx engine: intra-op threads (default: all cores)' });
}


export const sampleCommand: CommandModule<any, any> = {
  command: 'sample',
  describe: 'sample digits from a checkpoint: PNG grid, denoising strip, raw .npy',
  builder: (y) => sampleBuilder(y)
    .option('ckpt', { type: 'string', demandOption: true, describe: 'checkpoint folder' })
    .option('grid', { type: 'string', describe: 'write a PNG grid of the samples here' })
    .option('nrow', { type: 'number', default: 8, describe: 'images per grid row' })
    .option('strip', { type: 'string', describe: 'write a denoising-progression strip (x_t at chosen steps) here' })
    .option('strip-samples', { type: 'number', default: 6, describe: 'rows of the strip' })
    .option('strip-columns', { type: 'number', default: 10, describe: 'columns of the strip' })
    .option('npy', { type: 'string', describe: 'write float32 [N,H,W] samples in [0,1] here' })
    .option('onnx', { type: 'string', describe: "run this file from 'driftlab export' (made from --ckpt) instead of exporting in memory" })
    .option('overwrite', { type: 'boolean', default: false, describe: 'replace existing output files' }),
  handler: async (a) => {
    if (!a.grid && !a.strip && !a.npy) throw new DriftlabError('nothing to write: pass --grid FILE, --strip FILE and/or --npy FILE');
    for (const f of [a.grid, a.strip, a.npy]) checkWritable(f, a.overwrite);
    const n = positiveInt('n', a.n), batch = positiveInt('batch', a.batch), steps = positiveInt('steps', a.steps);
    await initBackend(a.backend as BackendName, { quiet: true });
    const threads = a.threads === undefined ? undefined : positiveInt('threads', a.threads);
    const p = await loadPipeline(a.ckpt, a.weights, { engine: a.engine, threads, onnxFile: a.onnx });
    process.stderr.write(`driftlab: ${p.engine.line}\n`);
    if (p.engine.int8Line) process.stderr.write(`driftlab: ${p.engine.int8Line}\n`);
    const progress = new Progress({ total: n, label: `sample ${a.sampler}-${steps}`, unit: 'img' });
    const g = await generate(p, {
      n, batch, sampler: a.sampler, steps, eta: a.eta, guidance: a.guidance, labels: labelsFor(p, n, a.label),
      clipX0: a.clipX0, variance: a.variance, spacing: a.spacing, seed: a.seed,
      stripColumns: a.strip ? positiveInt('strip-columns', a.stripColumns) : 0, stripSamples: a.stripSamples,
      onBatch: (done) => progress.tick(done - progress.count),
    });
    const S = p.config.model.sampleSize;
    if (a.grid) await writeFileNoClobber(a.grid, rasterToPng(imageGrid(g.images, n, S, S, { nrow: a.nrow, scale: 2 })), { overwrite: a.overwrite });
    if (a.strip && g.strip) await writeFileNoClobber(a.strip, rasterToPng(stripGrid(g.strip.rows, S, S, { labels: g.strip.labels, scale: 2 })), { overwrite: a.overwrite });
    if (a.npy) await writeFileNoClobber(a.npy, encodeNpy({ dtype: 'float32', shape: [n, S, S], data: g.images, fortranOrder: false }), { overwrite: a.overwrite });
    await p.dispose();
    process.stdout.write(`${n} samples (${a.sampler}, ${steps} steps, guidance ${a.guidance}) on ${p.engine.name}: ${[a.grid, a.strip, a.npy].filter(Boolean).join(', ')}\n`);
  },
};
