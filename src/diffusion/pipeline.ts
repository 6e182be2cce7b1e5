/**
 * Checkpoint -> denoiser -> images: the forward-only path shared by `sample`, `quickstart` and
 * (later) evaluation. Images come back as float32 [N,H,W,C] in [0,1].
 */
import * as tf from '@tensorflow/tfjs';
import { EngineChoice, EngineOptions, createEngine } from '../engine/select.js';
import type { OnnxInputGradSession } from '../engine/onnx-train.js';
import { DriftlabError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { CheckpointConfig, loadCheckpoint } from './checkpoint.js';
import { UNetModel } from './model.js';
import { Denoiser, SampleOptions, SamplerName, Spacing, VarianceType, sample, samplingTimesteps } from './samplers.js';
import { Schedule, makeSchedule } from './schedule.js';
import { splitFlat } from './model.js';

export interface Pipeline {
  config: CheckpointConfig;
  schedule: Schedule;
  model: UNetModel;
  /** the network as the samplers see it, on the chosen engine */
  net: Denoiser;
  engine: { name: 'tfjs' | 'onnx'; line: string; int8Line?: string };
  /**
   * onnx engine only: d/dx of a weighted MSE of the network's output, for fixed (float32) weights
   * (engine/onnx-train.ts OnnxInputGradSession), one session per row count, made on first use and
   * released with the pipeline. Absent on tfjs, where tf.grad runs through `model`.
   */
  inputGrad?: (rows: number) => Promise<OnnxInputGradSession>;
  dispose(): Promise<void>;
}

export function denoiserOf(model: UNetModel): Denoiser {
  return (x, t, labels) => tf.tidy(() => {
    const B = x.shape[0];
    const tt = (typeof t === 'number' ? tf.fill([B], t, 'float32') : tf.tensor1d(t)) as tf.Tensor1D;
    const lab = labels && model.config.numClasses > 0 ? tf.tensor1d(labels, 'int32') : undefined;
    return model.forward(x, tt, lab);
  });
}

export interface PipelineOptions extends EngineOptions {
  /** default tfjs (the reference); commands pass --engine */
  engine?: EngineChoice;
}

export async function loadPipeline(dir: string, weights: 'ema' | 'model' = 'ema', o: PipelineOptions = {}): Promise<Pipeline> {
  const ck = await loadCheckpoint(dir, { ema: weights === 'ema' });
  const flat = weights === 'ema' && ck.ema ? ck.ema : ck.params;
  const model = new UNetModel(ck.config.model, 0);
  model.setFlat(flat);
  let engine;
  try {
    engine = await createEngine(o.engine ?? 'tfjs', model, denoiserOf(model), o);
  } catch (e) {
    model.dispose();
    throw e;
  }
  const grads = new Map<number, Promise<OnnxInputGradSession>>();
  const inputGrad = (rows: number) => {
    // loaded on first use: only in-loop guidance on onnx needs the training engine's graphs
    if (!grads.has(rows)) grads.set(rows, import('../engine/onnx-train.js').then((m) => m.OnnxInputGradSession.create(ck.config.model, model.layout, flat, rows, ck.config.model.video?.frames, { threads: o.threads })));
    return grads.get(rows)!;
  };
  return {
    config: ck.config, schedule: makeSchedule(ck.config.schedule), model, net: engine.net, engine: { name: engine.name, line: engine.line, int8Line: engine.int8Line },
    inputGrad: engine.name === 'onnx' ? inputGrad : undefined,
    dispose: async () => {
      for (const s of grads.values()) await (await s.catch(() => null))?.release();
      await engine.dispose(); model.dispose();
    },
  };
}

export interface GenerateOptions {
  n: number;
  batch: number;
  sampler: SamplerName;
  steps: number;
  eta?: number;
  guidance?: number;
  /** per-sample labels [n]; for conditional models; undefined = null class */
  labels?: Int32Array;
  /** clip the predicted x0 to [-1,1] at every step; default true, as every command samples */
  clipX0?: boolean;
  variance?: VarianceType;
  spacing?: Spacing;
  seed: number;
  /** record x_t of the first `stripSamples` samples at about this many steps */
  stripColumns?: number;
  stripSamples?: number;
  onBatch?: (done: number, total: number) => void;
}

export interface Generated {
  /** [N,H,W,C] in [0,1] */
  images: Float32Array;
  strip?: { labels: string[]; rows: Float32Array[][] };
}

const to01 = (x: tf.Tensor) => tf.clipByValue(tf.div(tf.add(x, 1), 2), 0, 1);

export async function generate(p: Pipeline, o: GenerateOptions): Promise<Generated> {
  const c = p.config.model;
  if (!Number.isInteger(o.n) || o.n < 1) throw new DriftlabError(`--n must be a positive integer, got ${o.n}`);
  if (!Number.isInteger(o.batch) || o.batch < 1) throw new DriftlabError(`--batch must be a positive integer, got ${o.batch}`);
  if (o.guidance !== undefined && o.guidance !== 1 && c.numClasses === 0) {
    throw new DriftlabError('classifier-free guidance needs a class-conditional checkpoint; this one is unconditional (use --guidance 1)');
  }
  const ts = samplingTimesteps(p.schedule.T, o.steps, o.spacing ?? (o.steps === p.schedule.T ? 'leading' : 'trailing'));
  const D = c.sampleSize * c.sampleSize * c.outChannels;
  const images = new Float32Array(o.n * D);
  const rng = new Rng(o.seed).fork('sample');
  const cols = Math.min(o.stripColumns ?? 0, ts.length);
  const stripIdx = new Set<number>();
  for (let k = 0; k < cols; k++) stripIdx.add(Math.round((k * (ts.length - 1)) / Math.max(cols - 1, 1)));
  const stripN = Math.min(o.stripSamples ?? 0, o.n);
  const strip = cols > 0 && stripN > 0 ? { labels: [] as string[], rows: Array.from({ length: stripN }, () => [] as Float32Array[]) } : undefined;
  for (let start = 0; start < o.n; start += o.batch) {
    const B = Math.min(o.batch, o.n - start);
    const opts: SampleOptions = {
      sampler: o.sampler, steps: o.steps, eta: o.eta, guidance: o.guidance, clipX0: o.clipX0 ?? true, variance: o.variance,
      spacing: o.spacing, rng, labels: o.labels?.slice(start, start + B), nullLabel: c.numClasses,
      callback: strip && start === 0 ? (info) => {
        if (!stripIdx.has(info.i)) return;
        strip.labels.push(`t=${info.t}`);
        const v = to01(info.x).dataSync() as Float32Array;
        for (let s = 0; s < stripN && s < B; s++) strip.rows[s].push(v.slice(s * D, (s + 1) * D));
      } : undefined,
    };
    const x = await sample(p.net, p.schedule, p.config.objective.prediction, [B, c.sampleSize, c.sampleSize, c.outChannels], opts);
    const y01 = tf.tidy(() => to01(x));
    const v = y01.dataSync() as Float32Array;
    y01.dispose();
    // final column: the clean sample
    if (strip && start === 0) {
      strip.labels.push('x0');
      for (let s = 0; s < stripN && s < B; s++) strip.rows[s].push(v.slice(s * D, (s + 1) * D));
    }
    x.dispose();
    images.set(v, start * D);
    o.onBatch?.(start + B, o.n);
  }
  return { images, strip };
}

export { splitFlat };
