/**
 * What runs a training step: tfjs (the reference: autodiff on the active backend, optionally over
 * data-parallel workers, optimizer in JS) or onnxruntime (engine/onnx-train.ts: forward, backward,
 * clipping, AdamW and EMA as one ONNX graph, or with workers >= 2 gradient graphs in data-parallel
 * worker threads and the optimizer graph on the main thread, engine/onnx-train-dp.ts). Both read and write the same state, flat float32
 * arrays in the model layout (the checkpoint files), so a run started on one resumes on the other.
 *
 *   auto  onnx where onnxruntime-node loads and the training graph builds, else tfjs; one line
 *         says which (and why not onnx)
 */
import * as tf from '@tensorflow/tfjs';
import { BackendName } from '../backend.js';
import { DriftlabError } from '../util/errors.js';
import type { CheckpointConfig } from './checkpoint.js';
import { TrainBatch, lossAndGrad } from './grad.js';
import { UNetModel } from './model.js';
import { AdamW, AdamWConfig, clipGradNorm, emaDecay, emaUpdate } from './optim.js';
import { Schedule, makeSchedule } from './schedule.js';
import { GradWorkerPool } from './workers.js';

export type TrainEngineChoice = 'auto' | 'tfjs' | 'onnx';
export const TRAIN_ENGINES: TrainEngineChoice[] = ['auto', 'tfjs', 'onnx'];
export type TrainDevice = 'cpu' | 'cuda';
export const TRAIN_DEVICES: TrainDevice[] = ['cpu', 'cuda'];

/** Everything a step changes, in the model's flat layout (checkpoint: model/ema/optimizer + adamStep). */
export interface TrainState {
  params: Float32Array;
  ema: Float32Array;
  m: Float32Array;
  v: Float32Array;
  /** AdamW updates applied so far */
  adamStep: number;
}

/** This step's hyper-parameters: scheduled lr, max grad norm (0 = off), max EMA decay. */
export interface StepSettings { lr: number; gradClip: number; emaDecay: number }

export interface StepResult { loss: number; gradNorm: number }

export interface TrainEngine {
  readonly name: 'tfjs' | 'onnx';
  /** one line for humans: engine, version, threads / workers */
  readonly line: string;
  /**
   * loss and grad norm (before clipping) of the batch, then clip, AdamW and EMA. A non-finite
   * loss leaves the state unchanged (the caller stops).
   */
  step(batch: TrainBatch, s: StepSettings): Promise<StepResult>;
  /** the current state (tfjs: the live arrays; onnx: copies read from onnxruntime) */
  state(): TrainState;
  close(): Promise<void>;
}

export interface TrainEngineOptions {
  config: CheckpointConfig;
  adam: AdamWConfig;
  /** the starting state (copied by onnx, used in place by tfjs) */
  state: TrainState;
  /** rows per step: images, or clips x frames */
  rows: number;
  /**
   * data-parallel workers: tfjs, one backend each; onnx on cpu, one gradient session each
   * (engine/onnx-train-dp.ts; 1 = one session of the whole step; cuda: always one session)
   */
  workers: number;
  /** tfjs */
  backend: BackendName;
  /** onnx: intra-op threads per session (default cores / workers, at least 1; one session: all cores) */
  threads?: number;
  device?: TrainDevice;
  /** onnx on cpu: blocked-layout Convs where onnxruntime has them (default true; false for A/B) */
  nchwc?: boolean;
  /** where the engine line goes (default stderr); null: nowhere */
  say?: ((line: string) => void) | null;
}

/** The tfjs step, exactly the loop's original order: grad, clip, AdamW, EMA. */
export class TfjsTrainEngine implements TrainEngine {
  readonly name = 'tfjs';
  private readonly grad: Float32Array;
  private readonly schedule: Schedule;
  private constructor(
    private readonly model: UNetModel, private readonly pool: GradWorkerPool | null, private readonly adam: AdamW,
    private readonly s: TrainState, private readonly o: TrainEngineOptions, readonly line: string,
  ) {
    this.grad = new Float32Array(model.layout.size);
    this.schedule = makeSchedule(o.config.schedule);
  }

  static async create(o: TrainEngineOptions): Promise<TfjsTrainEngine> {
    const { config } = o;
    const model = new UNetModel(config.model, 0);
    const st = o.state;
    if (st.params.length !== model.layout.size) throw new Error(`training state has ${st.params.length} values, the model ${model.layout.size}`);
    model.setFlat(st.params);
    const adam = new AdamW(model.layout.size, o.adam);
    adam.m = st.m; adam.v = st.v; adam.t = st.adamStep;
    const pool = o.workers > 1
      ? await GradWorkerPool.create(o.workers, { backend: o.backend, model: config.model, schedule: config.schedule, objective: config.objective, size: model.layout.size })
      : null;
    return new TfjsTrainEngine(model, pool, adam, st, o, `engine tfjs ${tf.version.tfjs} · backend ${tf.getBackend()} · ${o.workers} worker${o.workers > 1 ? 's' : ''}`);
  }

  async step(batch: TrainBatch, h: StepSettings): Promise<StepResult> {
    const { grad, s } = this;
    let loss: number;
    if (this.pool) loss = await this.pool.lossAndGrad(s.params, batch, grad);
    else {
      grad.fill(0);
      loss = lossAndGrad(this.model, this.schedule, this.o.config.objective, batch, 1, grad).loss;
    }
    if (!Number.isFinite(loss)) return { loss, gradNorm: NaN };
    const gradNorm = clipGradNorm(grad, h.gradClip);
    this.adam.step(s.params, grad, h.lr);
    emaUpdate(s.ema, s.params, emaDecay(h.emaDecay, this.adam.t - 1));
    s.adamStep = this.adam.t;
    if (!this.pool) this.model.setFlat(s.params);
    return { loss, gradNorm };
  }

  state(): TrainState { return this.s; }

  async close(): Promise<void> {
    await this.pool?.close();
    this.model.dispose();
  }
}

export async function createTrainEngine(choice: TrainEngineChoice, o: TrainEngineOptions): Promise<TrainEngine> {
  if (!TRAIN_ENGINES.includes(choice)) throw new DriftlabError(`unknown engine '${choice}'; choose one of ${TRAIN_ENGINES.join(', ')}`);
  const device = o.device ?? 'cpu';
  if (!TRAIN_DEVICES.includes(device)) throw new DriftlabError(`unknown device '${device}'; choose one of ${TRAIN_DEVICES.join(', ')}`);
  if (device === 'cuda' && choice === 'tfjs') throw new DriftlabError('--device cuda trains on onnxruntime; use --engine onnx (or auto)');
  const say = o.say === undefined ? (l: string) => process.stderr.write(`driftlab: ${l}\n`) : o.say;
  if (choice !== 'tfjs') {
    try {
      const { OnnxTrainEngine } = await import('../engine/onnx-train.js');
      const e = await OnnxTrainEngine.create(o);
      say?.(`training on ${e.line}${choice === 'auto' ? ' (--engine auto)' : ''}`);
      return e;
    } catch (e) {
      // an explicit onnx (or cuda) must not silently become tfjs
      if (!(e instanceof DriftlabError) || choice === 'onnx' || device === 'cuda') throw e;
      say?.(`warning: onnx training unavailable, training on tfjs: ${e.message}`);
    }
  }
  const e = await TfjsTrainEngine.create(o);
  if (choice === 'tfjs') say?.(`training on ${e.line}`);
  return e;
}
