/** driftlab train: train an image DDPM on MNIST. */
import type { CommandModule } from 'yargs';
import * as os from 'node:os';
import { initBackend, BackendName } from '../backend.js';
import { getPreset, PRESETS } from '../diffusion/presets.js';
import { train } from '../diffusion/train.js';
import { SCHEDULE_KINDS, ScheduleKind } from '../diffusion/schedule.js';
import { PREDICTIONS, Prediction, Weighting, validateObjective } from '../diffusion/objective.js';
import { loadBundledMnist, loadIdx } from '../../datasets/mnist/index.js';
import { positiveInt, nonNegative } from './common.js';
import { DriftlabError } from '../util/errors.js';
import { TRAIN_DEVICES, TRAIN_ENGINES, TrainDevice, TrainEngineChoice } from '../diffusion/train-engine.js';

export const trainCommand: CommandModule<any, any> = {
  command: 'train',
  describe: 'train an image DDPM on MNIST (bundled 10,000 digits, or IDX files)',
  builder: (y) => y
    .option('preset', { type: 'string', default: 'mnist-small', describe: `model + recipe: ${Object.keys(PRESETS).join(', ')}` })
    .option('out', { type: 'string', demandOption: true, describe: 'checkpoint folder (written atomically every --checkpoint-every steps)' })
    .option('resume', { type: 'boolean', default: false, describe: 'continue the run in --out exactly where its last checkpoint left it' })
    .option('overwrite', { type: 'boolean', default: false, describe: 'start over even if --out holds a checkpoint' })
    .option('steps', { type: 'number', describe: 'optimizer steps (default from the preset)' })
    .option('epochs', { type: 'number', describe: 'train for this many passes over the data instead of --steps' })
    .option('minutes', { type: 'number', describe: 'stop after this many minutes (a checkpoint is written; --resume continues)' })
    .option('batch-size', { type: 'number' })
    .option('lr', { type: 'number' })
    .option('lr-warmup', { type: 'number', describe: 'linear learning-rate warm-up steps' })
    .option('lr-decay-from', { type: 'number', describe: 'cosine learning-rate decay from this step to 0 at the last step (--steps); unset = constant lr after the warm-up. Applies from the resumed step on: pass it again with --resume' })
    .option('weight-decay', { type: 'number' })
    .option('grad-clip', { type: 'number', describe: 'max global grad norm (0 = off)' })
    .option('ema-decay', { type: 'number', describe: 'max EMA decay; effective decay min(d, (1+n)/(10+n))' })
    .option('class-dropout', { type: 'number', describe: 'probability of the null label (classifier-free guidance)' })
    .option('classes', { type: 'number', describe: 'number of classes (0 = unconditional)' })
    .option('checkpoint-every', { type: 'number' })
    .option('schedule', { choices: SCHEDULE_KINDS, describe: 'noise schedule' })
    .option('timesteps', { type: 'number', describe: 'diffusion steps T' })
    .option('prediction', { choices: PREDICTIONS, describe: 'what the network predicts' })
    .option('loss-weighting', { choices: ['uniform', 'min-snr'], describe: 'per-timestep loss weight' })
    .option('snr-gamma', { type: 'number' })
    .option('flip', { type: 'boolean', describe: 'random horizontal flips (off: flipped digits are not digits)' })
    .option('idx-images', { type: 'string', describe: 'train on an MNIST IDX images file (plain or .gz) instead of the bundled digits' })
    .option('idx-labels', { type: 'string', describe: 'matching IDX labels file' })
    .option('engine', { choices: TRAIN_ENGINES, default: 'auto', describe: 'what runs a training step: onnx (forward, backward and AdamW as onnxruntime graphs; sessions: --workers), tfjs, or auto (onnx where onnxruntime-node loads)' })
    .option('device', { choices: TRAIN_DEVICES, default: 'cpu', describe: 'onnx engine: cpu, or cuda where onnxruntime-node was installed with its CUDA provider (README; one session, --workers does not apply)' })
    .option('threads', { type: 'number', describe: 'onnx engine: intra-op threads per session (default: cores / --workers, at least 1; with --workers 1, all cores)' })
    .option('workers', { type: 'number', default: os.availableParallelism(), describe: `data-parallel workers (1 = one in-process step). tfjs: one backend each. onnx on cpu: one gradient session each over its shard (the optimizer on the main thread); 1 = one session of the whole step on --threads. Default: the core count, so onnx runs ${os.availableParallelism()} sessions x 1 intra-op thread (measured faster than 1 session x all threads, docs/BENCHMARKS.md session 8). --device cuda: always one session` }),
  handler: async (a) => {
    const p = getPreset(a.preset);
    const tr = p.train;
    if (a.steps !== undefined) { tr.steps = positiveInt('steps', a.steps); tr.epochs = undefined; }
    if (a.epochs !== undefined) tr.epochs = nonNegative('epochs', a.epochs) || undefined;
    if (a.batchSize !== undefined) tr.batchSize = positiveInt('batch-size', a.batchSize);
    if (a.lr !== undefined) tr.lr = nonNegative('lr', a.lr);
    if (a.lrWarmup !== undefined) tr.lrWarmup = nonNegative('lr-warmup', a.lrWarmup);
    if (a.lrDecayFrom !== undefined) tr.lrDecayFrom = Number(a.lrDecayFrom); // checked by runTraining
    if (a.weightDecay !== undefined) tr.weightDecay = nonNegative('weight-decay', a.weightDecay);
    if (a.gradClip !== undefined) tr.gradClip = nonNegative('grad-clip', a.gradClip);
    if (a.emaDecay !== undefined) tr.emaDecay = nonNegative('ema-decay', a.emaDecay);
    if (a.classDropout !== undefined) tr.classDropout = nonNegative('class-dropout', a.classDropout);
    if (a.checkpointEvery !== undefined) tr.checkpointEvery = positiveInt('checkpoint-every', a.checkpointEvery);
    if (a.flip !== undefined) tr.flip = a.flip;
    if (a.classes !== undefined) p.model.numClasses = Math.floor(nonNegative('classes', a.classes));
    if (a.schedule !== undefined) p.schedule.kind = a.schedule as ScheduleKind;
    if (a.timesteps !== undefined) p.schedule.timesteps = positiveInt('timesteps', a.timesteps);
    if (a.prediction !== undefined) p.objective.prediction = a.prediction as Prediction;
    if (a.lossWeighting !== undefined) p.objective.weighting = a.lossWeighting as Weighting;
    if (a.snrGamma !== undefined) p.objective.snrGamma = a.snrGamma;
    if (a.minutes !== undefined && !(a.minutes > 0)) throw new DriftlabError(`--minutes must be > 0, got ${a.minutes}`);
    validateObjective(p.objective);
    tr.seed = a.seed;
    const workers = positiveInt('workers', a.workers);
    const threads = a.threads === undefined ? undefined : positiveInt('threads', a.threads);
    const data = a.idxImages ? await loadIdx(a.idxImages, a.idxLabels) : loadBundledMnist();
    if (p.model.numClasses > 0 && !(data as any).labels) throw new DriftlabError('a class-conditional preset needs labels; pass --idx-labels or --classes 0');
    await initBackend(a.backend as BackendName);
    process.stderr.write(`driftlab: training ${p.name} (${p.model.numClasses ? 'class-conditional' : 'unconditional'}) on ${data.n} digits\n`);
    const r = await train({ preset: p, data: data as any, out: a.out, resume: a.resume, overwrite: a.overwrite, workers, backend: a.backend, minutes: a.minutes,
      engine: a.engine as TrainEngineChoice, device: a.device as TrainDevice, threads,
    });
    process.stdout.write(`trained to step ${r.steps} in ${r.seconds.toFixed(0)} s; last loss ${r.lastLoss.toFixed(4)}${r.stoppedEarly ? ' (time limit reached; --resume continues)' : ''}\ncheckpoint: ${a.out}\n`);
  },
};
