/**
 * Training on onnxruntime-node: the graphs of engine/train-graph.ts in sessions. The parameters,
 * Adam moments and EMA live as onnxruntime tensors between steps: each step's new_* outputs are
 * the next step's inputs; they become flat float32 arrays (UNetModel's layout, the checkpoint
 * format) only when read for a checkpoint, so a run resumes on either engine.
 *
 * Devices: cpu (intra-op threads = all cores by default), or cuda where onnxruntime-node was
 * installed with its CUDA binaries (Linux x64; see README, "Training on onnxruntime").
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import type { UNetConfig } from '../diffusion/config.js';
import { modelParamSpecs } from '../diffusion/arch.js';
import { TrainBatch, prepareBatch } from '../diffusion/grad.js';
import { FlatLayout, flatLayout } from '../diffusion/model.js';
import { AdamWConfig, emaDecay } from '../diffusion/optim.js';
import { Schedule, makeSchedule } from '../diffusion/schedule.js';
import type { StepResult, StepSettings, TrainEngine, TrainEngineOptions, TrainState } from '../diffusion/train-engine.js';
import { DriftlabError } from '../util/errors.js';
import { TRAIN_SESSION_EXTRA, cpuSessionOptions, loadOrt, nchwcBlockSize } from './onnx-engine.js';
import { STEP_SCALARS, buildTrainGraph } from './train-graph.js';

type Ort = typeof import('onnxruntime-node');
type Session = import('onnxruntime-node').InferenceSession;
type OrtTensor = import('onnxruntime-node').Tensor;

export type Device = 'cpu' | 'cuda';
export const DEVICES: Device[] = ['cpu', 'cuda'];

export interface OnnxTrainOptions {
  threads?: number;
  device?: Device;
  /**
   * run the Convs on the weights through onnxruntime's blocked-layout CPU kernels where it has
   * them (default true on cpu; never on cuda): train-graph.ts nchwcBlock; the step took 0.68-0.84 of
   * the time at 1 thread, the data-parallel default ran 1.10x faster (docs/BENCHMARKS.md, session
   * 10). false: plain Convs (A/B, tests).
   */
  nchwc?: boolean;
}

/** The channel block the training graphs are built for under options o (0: plain Convs). */
export async function trainGraphBlock(o: { device?: Device; nchwc?: boolean }): Promise<number> {
  if (o.nchwc === false || (o.device ?? 'cpu') !== 'cpu') return 0;
  const status = await loadOrt();
  return status.ort ? nchwcBlockSize(status.ort) : 0;
}

/** the engine line's note on the blocked kernels */
export const blockWord = (block: number) => (block ? ` · blocked-layout Convs (block ${block})` : '');

/** A prepared batch (grad.ts prepareBatch) of `rows` rows. */
export interface GraphBatch {
  xt: Float32Array;
  t: ArrayLike<number>;
  labels?: Int32Array;
  target: Float32Array;
  w: Float32Array;
}

/** The per-step scalars of optim.ts, computed in float64 on the host exactly as AdamW.step does. */
export interface StepHyper { lr: number; step: number; maxNorm: number; emaDecay: number }

/** Why the CUDA EP cannot run here, or null when its provider library is installed. */
export function cudaMissing(): string | null {
  let dir: string;
  try {
    dir = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
  } catch {
    return 'onnxruntime-node is not installed';
  }
  const bin = path.join(dir, 'bin');
  const has = (d: string): boolean => fs.readdirSync(d, { withFileTypes: true }).some((e) =>
    e.isDirectory() ? has(path.join(d, e.name)) : e.name.startsWith('libonnxruntime_providers_cuda'));
  return fs.existsSync(bin) && has(bin) ? null : 'onnxruntime-node was installed without its CUDA execution provider (ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node, see README "Training on onnxruntime"), or use --device cpu';
}

/** Refuse an unusable device before any graph is built (one line). */
export function checkDevice(o: OnnxTrainOptions): Device {
  const device = o.device ?? 'cpu';
  if (!DEVICES.includes(device)) throw new DriftlabError(`unknown device '${device}'; choose one of ${DEVICES.join(', ')}`);
  if (device === 'cuda') {
    const why = cudaMissing();
    if (why) throw new DriftlabError(`--device cuda: ${why}`);
  }
  return device;
}

export const threadsWord = (n: number) => `${n} intra-op thread${n > 1 ? 's' : ''}`;

export async function openSession(bytes: Uint8Array, o: OnnxTrainOptions): Promise<{ ort: Ort; session: Session; threads: number; line: string }> {
  const status = await loadOrt();
  if (!status.ort) throw new DriftlabError(`${status.error}; --engine onnx needs it (npm install onnxruntime-node), or use --engine tfjs`);
  const device = checkDevice(o);
  const { threads, options } = cpuSessionOptions(o.threads, { ...TRAIN_SESSION_EXTRA, executionProviders: device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'] });
  let session: Session;
  try {
    session = await status.ort.InferenceSession.create(bytes, options as any);
  } catch (e) {
    throw new DriftlabError(`onnxruntime could not load the training graph${device === 'cuda' ? ' on cuda' : ''}: ${String((e as Error)?.message ?? e).split('\n')[0].slice(0, 200)}`);
  }
  const line = `engine onnxruntime-node ${status.version} · ${device} · 1 session${device === 'cpu' ? ` x ${threadsWord(threads)}` : ''} · training graph`;
  return { ort: status.ort, session, threads, line };
}

/** A graph input as plain data (what a worker thread receives; batchFeeds makes tensors of it). */
export interface FeedArray { type: 'float32' | 'int64'; data: Float32Array | BigInt64Array; dims: number[] }

/** The batch inputs x, t, target, w (and labels) of a training graph for `rows` rows. */
export function batchArrays(c: UNetConfig, rows: number, b: GraphBatch): Record<string, FeedArray> {
  const S = c.sampleSize;
  if (b.xt.length !== rows * S * S * c.inChannels) throw new DriftlabError(`training graph for ${rows} rows got a batch of ${b.xt.length / (S * S * c.inChannels)}`);
  const f = (data: Float32Array, dims: number[]): FeedArray => ({ type: 'float32', data, dims });
  const feeds: Record<string, FeedArray> = {
    x: f(b.xt, [rows, S, S, c.inChannels]),
    t: f(Float32Array.from(b.t), [rows]),
    target: f(b.target, [rows, S, S, c.outChannels]),
    w: f(b.w, [rows]),
  };
  if (c.numClasses > 0) {
    const lab = new BigInt64Array(rows).fill(BigInt(c.numClasses)); // absent labels: the null class
    if (b.labels) for (let i = 0; i < rows; i++) lab[i] = BigInt(b.labels[i]);
    feeds.labels = { type: 'int64', data: lab, dims: [rows] };
  }
  return feeds;
}

export function batchFeeds(ort: Ort, c: UNetConfig, rows: number, b: GraphBatch): Record<string, OrtTensor> {
  return Object.fromEntries(Object.entries(batchArrays(c, rows, b)).map(([k, a]) => [k, new ort.Tensor(a.type, a.data, a.dims)]));
}

/** Loss and gradient only (tests, checks): the gradient graph in a session. */
export class OnnxGradSession {
  private constructor(private readonly ort: Ort, private readonly session: Session, readonly config: UNetConfig, readonly rows: number, readonly layout: FlatLayout) {}

  static async create(config: UNetConfig, layout: FlatLayout, rows: number, frames?: number, o: OnnxTrainOptions = {}): Promise<OnnxGradSession> {
    const nchwcBlock = await trainGraphBlock(o);
    const { ort, session } = await openSession(buildTrainGraph(config, { rows, frames, nchwcBlock }).bytes, o);
    return new OnnxGradSession(ort, session, config, rows, layout);
  }

  /** params: flat (layout order) -> loss and the flat gradient */
  async lossAndGrad(params: Float32Array, b: GraphBatch): Promise<{ loss: number; grad: Float32Array }> {
    const feeds = batchFeeds(this.ort, this.config, this.rows, b);
    this.layout.specs.forEach((s, i) => {
      const n = s.shape.reduce((a, q) => a * q, 1);
      feeds[`p:${s.name}`] = new this.ort.Tensor('float32', params.subarray(this.layout.offsets[i], this.layout.offsets[i] + n), s.shape);
    });
    const r = await this.session.run(feeds);
    const grad = new Float32Array(this.layout.size);
    this.layout.specs.forEach((s, i) => grad.set(r[`g:${s.name}`].data as Float32Array, this.layout.offsets[i]));
    return { loss: (r.loss.data as Float32Array)[0], grad };
  }

  release(): Promise<void> { return this.session.release(); }
}

/**
 * The gradient of the same weighted MSE with respect to the network's input x, for fixed
 * parameters (train-graph.ts wrt 'input'): one forward and one backward pass in one run, the
 * parameters fed as onnxruntime tensors made once. For in-loop guidance
 * (drift/correctors/reconstruction-guidance.ts), where it replaces a backward pass on tfjs.
 */
export class OnnxInputGradSession {
  private constructor(private readonly ort: Ort, private readonly session: Session, readonly config: UNetConfig, readonly rows: number, private readonly params: Record<string, OrtTensor>) {}

  /** params: flat (layout order), copied into tensors kept for the session's life */
  static async create(config: UNetConfig, layout: FlatLayout, params: Float32Array, rows: number, frames?: number, o: OnnxTrainOptions = {}): Promise<OnnxInputGradSession> {
    const nchwcBlock = await trainGraphBlock(o);
    const { ort, session } = await openSession(buildTrainGraph(config, { rows, frames, nchwcBlock, wrt: 'input' }).bytes, o);
    const feeds: Record<string, OrtTensor> = {};
    layout.specs.forEach((s, i) => {
      const n = s.shape.reduce((a, q) => a * q, 1);
      feeds[`p:${s.name}`] = new ort.Tensor('float32', params.slice(layout.offsets[i], layout.offsets[i] + n), s.shape);
    });
    return new OnnxInputGradSession(ort, session, config, rows, feeds);
  }

  /** loss = mean_n w_n mean_d (net(x)_n - target_n)^2 and d loss / d x (flat, like b.xt) */
  async inputGrad(b: GraphBatch): Promise<{ loss: number; grad: Float32Array }> {
    const r = await this.session.run({ ...batchFeeds(this.ort, this.config, this.rows, b), ...this.params });
    return { loss: (r.loss.data as Float32Array)[0], grad: r['g:x'].data as Float32Array };
  }

  release(): Promise<void> { return this.session.release(); }
}

export const SLOTS = ['p', 'm', 'v', 'ema'] as const;
export type Slot = (typeof SLOTS)[number];

/** The step scalars of train-graph.ts as feeds, from AdamWConfig and this step's StepHyper (float64 on the host). */
export function stepScalarFeeds(ort: Ort, adam: AdamWConfig, h: StepHyper): Record<string, OrtTensor> {
  const { beta1: b1, beta2: b2, weightDecay: wd } = adam;
  const d = h.emaDecay;
  const scalars: Record<(typeof STEP_SCALARS)[number], number> = {
    max_norm: h.maxNorm > 0 ? h.maxNorm : Infinity, decay: 1 - h.lr * wd, step_size: h.lr / (1 - Math.pow(b1, h.step)),
    sqrt_bc2: Math.sqrt(1 - Math.pow(b2, h.step)), ema_d: d, ema_c: 1 - d,
  };
  return Object.fromEntries(STEP_SCALARS.map((k) => [k, new ort.Tensor('float32', Float32Array.of(scalars[k]), [])]));
}

/**
 * Parameters, Adam moments and EMA as onnxruntime tensors between steps (`${slot}:${name}`): the
 * inputs of an optimizer run, replaced by its new_* outputs.
 */
export class OrtTrainState {
  private state = new Map<string, OrtTensor>();
  constructor(private readonly ort: Ort, readonly layout: FlatLayout) {}

  /** Load flat parameters, EMA and Adam moments (layout order) into onnxruntime tensors. */
  set(s: Record<Slot, Float32Array>): void {
    for (const slot of SLOTS) {
      this.layout.specs.forEach((p, i) => {
        const n = p.shape.reduce((a, q) => a * q, 1);
        const o = this.layout.offsets[i];
        this.state.set(`${slot}:${p.name}`, new this.ort.Tensor('float32', s[slot].slice(o, o + n), p.shape));
      });
    }
  }

  /** Copy one slot, or all, into flat arrays (checkpoints). */
  read(into: Partial<Record<Slot, Float32Array>>): void {
    for (const slot of SLOTS) {
      const flat = into[slot];
      if (flat) this.layout.specs.forEach((p, i) => flat.set(this.tensor(slot, p.name).data as Float32Array, this.layout.offsets[i]));
    }
  }

  /** the optimizer inputs p:/m:/v:/ema:NAME into feeds */
  feed(feeds: Record<string, OrtTensor>): void {
    for (const slot of SLOTS) for (const p of this.layout.specs) feeds[`${slot}:${p.name}`] = this.tensor(slot, p.name);
  }

  /** the outputs new_p:/... of an optimizer run become the state */
  update(r: Record<string, OrtTensor>): void {
    for (const slot of SLOTS) for (const p of this.layout.specs) this.state.set(`${slot}:${p.name}`, r[`new_${slot}:${p.name}`]);
  }

  private tensor(slot: Slot, name: string): OrtTensor {
    const t = this.state.get(`${slot}:${name}`);
    if (!t) throw new Error('onnx trainer: setState() was never called');
    return t;
  }

  clear(): void { this.state.clear(); }
}

/** What both onnx trainers (one session, or data-parallel workers) do for OnnxTrainEngine. */
export interface OnnxStepper {
  readonly layout: FlatLayout;
  readonly line: string;
  setState(s: Record<Slot, Float32Array>): void;
  readState(into: Record<Slot, Float32Array>): void;
  step(b: GraphBatch, h: StepHyper): Promise<{ loss: number; gradNorm: number }>;
  release(): Promise<void>;
}

/**
 * Whole training steps on onnxruntime: forward, backward, clipping, AdamW and EMA in one run.
 * One session per batch size (rows), built on first use.
 */
export class OnnxTrainer implements OnnxStepper {
  private sessions = new Map<number, Session>();
  private readonly state: OrtTrainState;
  private constructor(
    private readonly ort: Ort, readonly config: UNetConfig, readonly layout: FlatLayout, readonly adam: AdamWConfig,
    private readonly opts: OnnxTrainOptions, readonly line: string, private readonly frames: number | undefined, private readonly block: number,
  ) {
    this.state = new OrtTrainState(ort, layout);
  }

  static async create(config: UNetConfig, layout: FlatLayout, adam: AdamWConfig, rows: number, frames?: number, o: OnnxTrainOptions = {}): Promise<OnnxTrainer> {
    checkDevice(o);
    const nchwcBlock = await trainGraphBlock(o);
    const { ort, session, line } = await openSession(buildTrainGraph(config, { rows, frames, adam, nchwcBlock }).bytes, o);
    const tr = new OnnxTrainer(ort, config, layout, adam, o, line + blockWord(nchwcBlock), frames, nchwcBlock);
    tr.sessions.set(rows, session);
    return tr;
  }

  /** Load flat parameters, EMA and Adam moments (layout order) into onnxruntime tensors. */
  setState(s: Record<Slot, Float32Array>): void { this.state.set(s); }

  /** Copy the current state into flat arrays (checkpoints). */
  readState(into: Record<Slot, Float32Array>): void { this.state.read(into); }

  private async session(rows: number): Promise<Session> {
    let s = this.sessions.get(rows);
    if (!s) {
      s = (await openSession(buildTrainGraph(this.config, { rows, frames: this.frames, adam: this.adam, nchwcBlock: this.block }).bytes, this.opts)).session;
      this.sessions.set(rows, s);
    }
    return s;
  }

  /** One optimizer step on a prepared batch; returns the loss and the grad norm before clipping. */
  async step(b: GraphBatch, h: StepHyper): Promise<{ loss: number; gradNorm: number }> {
    const rows = b.w.length;
    const feeds = { ...batchFeeds(this.ort, this.config, rows, b), ...stepScalarFeeds(this.ort, this.adam, h) };
    this.state.feed(feeds);
    const r = await (await this.session(rows)).run(feeds);
    const loss = (r.loss.data as Float32Array)[0];
    // a non-finite loss keeps the last good state (as the tfjs engine does, which never applies it)
    if (Number.isFinite(loss)) this.state.update(r);
    return { loss, gradNorm: (r.grad_norm.data as Float32Array)[0] };
  }

  async release(): Promise<void> {
    for (const s of this.sessions.values()) await s.release();
    this.sessions.clear();
    this.state.clear();
  }
}

/**
 * How many sessions and intra-op threads: the decision of OnnxTrainEngine.create.
 *   cuda: one session (the device runs the graph; --workers does not apply)
 *   cpu:  W = min(workers, clips in the batch); W >= 2: W data-parallel worker sessions
 *         (onnx-train-dp.ts) of `threads` intra-op threads each (default cores / W, at least 1);
 *         W = 1: one session of `threads` (default all cores)
 */
export function onnxLayout(o: { workers: number; threads?: number; device?: Device; rows: number; frames?: number }, cores = os.availableParallelism()): { sessions: number; threads: number } {
  const clips = Math.floor(o.rows / (o.frames ?? 1));
  const W = (o.device ?? 'cpu') === 'cuda' ? 1 : Math.max(1, Math.min(o.workers, clips));
  return { sessions: W, threads: o.threads ?? (W > 1 ? Math.max(1, Math.floor(cores / W)) : cores) };
}

/**
 * diffusion/train-engine.ts's engine on onnxruntime: the host prepares the batch (grad.ts
 * prepareBatch: x_t, target, weights) and the per-step scalars; one session run does the rest,
 * or (--workers >= 2 on cpu) data-parallel gradient sessions in worker threads and the optimizer
 * graph on this thread (onnx-train-dp.ts).
 */
export class OnnxTrainEngine implements TrainEngine {
  readonly name = 'onnx';
  private constructor(private readonly tr: OnnxStepper, private readonly o: TrainEngineOptions, private adamStep: number, private readonly schedule: Schedule) {}

  get line(): string { return this.tr.line; }

  static async create(o: TrainEngineOptions): Promise<OnnxTrainEngine> {
    const { model } = o.config;
    const layout = flatLayout(modelParamSpecs(model));
    if (o.state.params.length !== layout.size) throw new Error(`training state has ${o.state.params.length} values, the model ${layout.size}`);
    const frames = model.video?.frames;
    const device = checkDevice({ device: o.device });
    const { sessions, threads } = onnxLayout({ workers: o.workers, threads: o.threads, device, rows: o.rows, frames });
    let tr: OnnxStepper;
    if (sessions > 1) {
      const { OnnxDpTrainer } = await import('./onnx-train-dp.js');
      tr = await OnnxDpTrainer.create(model, layout, o.adam, o.rows, frames, { workers: sessions, threads, nchwc: o.nchwc });
    } else {
      tr = await OnnxTrainer.create(model, layout, o.adam, o.rows, frames, { threads: device === 'cpu' ? threads : o.threads, device, nchwc: o.nchwc });
    }
    const { params: p, m, v, ema } = o.state;
    tr.setState({ p, m, v, ema });
    return new OnnxTrainEngine(tr, o, o.state.adamStep, makeSchedule(o.config.schedule));
  }

  async step(batch: TrainBatch, s: StepSettings): Promise<StepResult> {
    const frames = this.o.config.model.video?.frames;
    if (batch.frames !== frames) throw new Error(`onnx training graph built for ${frames ?? 'no'} frames per clip, batch has ${batch.frames ?? 'none'}`);
    const { xt, target, w } = prepareBatch(this.schedule, this.o.config.objective, batch);
    const step = this.adamStep + 1;
    const r = await this.tr.step({ xt, t: batch.t, labels: batch.labels, target, w }, { lr: s.lr, step, maxNorm: s.gradClip, emaDecay: emaDecay(s.emaDecay, this.adamStep) });
    if (Number.isFinite(r.loss)) this.adamStep = step;
    return r;
  }

  state(): TrainState {
    const n = this.tr.layout.size;
    const st = { p: new Float32Array(n), m: new Float32Array(n), v: new Float32Array(n), ema: new Float32Array(n) };
    this.tr.readState(st);
    return { params: st.p, ema: st.ema, m: st.m, v: st.v, adamStep: this.adamStep };
  }

  close(): Promise<void> { return this.tr.release(); }
}
