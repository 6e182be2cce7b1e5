/**
 * Data-parallel training on onnxruntime: W worker threads (engine/onnx-train-worker.ts), each
 * with a session of the gradient graph (train-graph.ts buildTrainGraph without adam) over its
 * contiguous shard of whole clips (video rows are clips x frames; image rows are images), at
 * `threads` intra-op threads each; the main thread holds the parameters, Adam moments and EMA as
 * onnxruntime tensors and runs the optimizer graph (buildOptimizerGraph: the same clip, AdamW and
 * EMA as the whole-step graph) on
 *   g = sum_k (N_k / N) g_k,  loss = sum_k (N_k / N) loss_k
 * summed in worker order (float64 per element, rounded once): the same seed and the same workers
 * give the same bytes.
 *
 * Why: onnxruntime-node's session runs block their thread (two sessions in one thread do not run
 * concurrently, bench/probe-two-sessions.ts), and one session's intra-op threads scale worse
 * than two 1-thread sessions over half the batch each (bench/probe-two-workers.ts,
 * docs/BENCHMARKS.md session 8).
 *
 * Memory: parameters in a SharedArrayBuffer the workers read (written after each optimizer run),
 * one shared gradient buffer per worker. A batch with fewer clips than workers uses fewer workers
 * that step; a shard size not seen before builds its session on first use (as OnnxTrainer does
 * per batch size). Any failure terminates every worker before it is thrown.
 */
import { Worker } from 'node:worker_threads';
import type { UNetConfig } from '../diffusion/config.js';
import type { FlatLayout } from '../diffusion/model.js';
import type { AdamWConfig } from '../diffusion/optim.js';
import { DriftlabError } from '../util/errors.js';
import { TRAIN_SESSION_EXTRA, cpuSessionOptions } from './onnx-engine.js';
import {
  FeedArray, GraphBatch, OnnxStepper, OrtTrainState, Slot, StepHyper, batchArrays, openSession, stepScalarFeeds, threadsWord, blockWord, trainGraphBlock,
} from './onnx-train.js';
import { buildOptimizerGraph, buildTrainGraph } from './train-graph.js';

type Ort = typeof import('onnxruntime-node');
type Session = import('onnxruntime-node').InferenceSession;
type OrtTensor = import('onnxruntime-node').Tensor;

export interface OnnxDpOptions {
  /** worker threads (>= 2; a step with fewer clips uses fewer) */
  workers: number;
  /** intra-op threads per worker (default 1) */
  threads?: number;
  /** intra-op threads of the optimizer session on the main thread (default 1) */
  optimizerThreads?: number;
  /** blocked-layout Convs in the gradient graphs where onnxruntime has them (default true; onnx-train.ts OnnxTrainOptions) */
  nchwc?: boolean;
}

interface Reply { ready?: boolean; loss?: number; built?: number; closed?: boolean; error?: string }

class Slot_ {
  private pending: { resolve: (m: Reply) => void; reject: (e: Error) => void } | null = null;
  private dead: Error | null = null;
  private inflight: Promise<void> = Promise.resolve();
  readonly built = new Set<number>();
  constructor(readonly worker: Worker, readonly grad: Float32Array) {
    worker.on('message', (m: Reply) => {
      const p = this.pending;
      this.pending = null;
      if (!p) return;
      if (m.error !== undefined) p.reject(new DriftlabError(`onnx training worker: ${m.error}`));
      else p.resolve(m);
    });
    const fail = (e: Error) => {
      this.dead ??= e;
      const p = this.pending;
      this.pending = null;
      p?.reject(e);
    };
    worker.on('error', (e) => fail(new DriftlabError(`onnx training worker failed: ${e.message.split('\n')[0]}`)));
    worker.on('exit', (code) => fail(new DriftlabError(`onnx training worker exited (code ${code})`)));
  }

  /** the next reply (one request at a time per worker) */
  reply(): Promise<Reply> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.pending) return Promise.reject(new Error('onnx training worker: request already pending'));
    const r = new Promise<Reply>((resolve, reject) => { this.pending = { resolve, reject }; });
    this.inflight = r.then(() => undefined, () => undefined); // settles on the reply, an error or the worker's exit
    return r;
  }

  call(msg: unknown, transfer: ArrayBuffer[] = []): Promise<Reply> {
    const r = this.reply();
    if (!this.dead) this.worker.postMessage(msg, transfer);
    return r;
  }

  /** until the request in flight (if any) is answered: a worker must not be terminated in a session run */
  idle(): Promise<void> { return this.inflight; }

  /**
   * Release the worker's sessions, then end it. Never while a run is in flight: onnxruntime-node
   * aborts the whole process ("terminate called after throwing an instance of 'Napi::Error'")
   * when a run finishes in a terminated worker.
   */
  async end(): Promise<void> {
    await this.idle();
    if (!this.dead) await Promise.race([this.call({ close: true }).catch(() => undefined), new Promise((r) => setTimeout(r, 5000).unref())]);
    await this.idle();
    await this.worker.terminate();
  }
}

/** [from, to) row bounds of n contiguous shards of whole groups (clips) of G rows */
export function shardBounds(rows: number, G: number, n: number): number[] {
  const groups = rows / G;
  return Array.from({ length: n + 1 }, (_, k) => G * Math.round((k * groups) / n));
}

export class OnnxDpTrainer implements OnnxStepper {
  private readonly state: OrtTrainState;
  private readonly grad: Float32Array;
  private readonly gFeeds: Record<string, OrtTensor> = {};
  private readonly graphs = new Map<number, Uint8Array>();
  private closed = false;
  private constructor(
    private readonly ort: Ort, private readonly optimizer: Session, private slots: Slot_[], private readonly params: Float32Array,
    readonly config: UNetConfig, readonly layout: FlatLayout, readonly adam: AdamWConfig, readonly line: string, private readonly frames: number | undefined,
    private readonly block: number,
  ) {
    this.state = new OrtTrainState(ort, layout);
    this.grad = new Float32Array(layout.size);
    layout.specs.forEach((s, i) => {
      const o = layout.offsets[i];
      this.gFeeds[`g:${s.name}`] = new ort.Tensor('float32', this.grad.subarray(o, o + s.shape.reduce((a, b) => a * b, 1)), s.shape);
    });
  }

  get workers(): number { return this.slots.length; }

  /** rows: the batch the sessions are built for first (other sizes build theirs on first use). */
  static async create(config: UNetConfig, layout: FlatLayout, adam: AdamWConfig, rows: number, frames: number | undefined, o: OnnxDpOptions): Promise<OnnxDpTrainer> {
    const W = o.workers, threads = o.threads ?? 1;
    if (!Number.isInteger(W) || W < 2) throw new DriftlabError(`data-parallel onnx training needs 2 or more workers, got ${W}`);
    const G = frames ?? 1;
    if (rows % G !== 0 || rows / G < W) throw new DriftlabError(`--workers ${W}: a batch of ${rows / G} ${frames ? 'clips' : 'images'} cannot be split over ${W} workers (shards keep clips whole); lower --workers`);
    // the optimizer is elementwise and short: one thread, so no idle intra-op pool spins beside the workers
    const { ort, session: optimizer, line } = await openSession(buildOptimizerGraph(config, adam).bytes, { threads: o.optimizerThreads ?? 1 });
    const version = line.match(/onnxruntime-node (\S+)/)?.[1] ?? '?';
    const block = await trainGraphBlock({ nchwc: o.nchwc });
    const options = cpuSessionOptions(threads, TRAIN_SESSION_EXTRA).options;
    const paramsSab = new SharedArrayBuffer(layout.size * 4);
    const specs = layout.specs.map((s, i) => ({ name: s.name, shape: s.shape, offset: layout.offsets[i] }));
    const url = new URL('./onnx-train-worker.js', import.meta.url);
    const slots: Slot_[] = [];
    try {
      for (let k = 0; k < W; k++) {
        const gradSab = new SharedArrayBuffer(layout.size * 4);
        const slot = new Slot_(new Worker(url, { workerData: { options, specs, paramsSab, gradSab } }), new Float32Array(gradSab));
        slots.push(slot);
      }
      const started = await Promise.allSettled(slots.map((s) => s.reply()));
      const failed = started.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
    } catch (e) {
      await Promise.all(slots.map((s) => s.worker.terminate())); // none has a session yet
      await optimizer.release();
      throw e;
    }
    const tr = new OnnxDpTrainer(ort, optimizer, slots, new Float32Array(paramsSab), config, layout, adam,
      `engine onnxruntime-node ${version} · cpu · ${W} sessions x ${threadsWord(threads)} (data-parallel worker threads) · gradient graphs, optimizer graph${blockWord(block)}`, frames, block);
    try {
      const b = shardBounds(rows, G, W);
      await Promise.all(slots.map((s, k) => tr.build(s, b[k + 1] - b[k])));
    } catch (e) {
      await tr.release();
      throw e;
    }
    return tr;
  }

  private graph(rows: number): Uint8Array {
    let g = this.graphs.get(rows);
    if (!g) this.graphs.set(rows, (g = buildTrainGraph(this.config, { rows, frames: this.frames, nchwcBlock: this.block }).bytes));
    return g;
  }

  private async build(s: Slot_, rows: number): Promise<void> {
    if (s.built.has(rows)) return;
    await s.call({ rows, bytes: this.graph(rows) });
    s.built.add(rows);
  }

  setState(s: Record<Slot, Float32Array>): void {
    this.state.set(s);
    this.params.set(s.p);
  }

  readState(into: Record<Slot, Float32Array>): void { this.state.read(into); }

  /** wall ms of the last step's phases (bench/profile): workers' gradients, the sum, the optimizer run */
  readonly phases = { grads: 0, combine: 0, optimizer: 0 };

  async step(b: GraphBatch, h: StepHyper): Promise<{ loss: number; gradNorm: number }> {
    if (this.closed) throw new Error('onnx data-parallel trainer: used after release()');
    try {
      return await this.stepOnce(b, h);
    } catch (e) {
      await this.release(); // no worker outlives a failed step
      throw e;
    }
  }

  private async stepOnce(b: GraphBatch, h: StepHyper): Promise<{ loss: number; gradNorm: number }> {
    const t0 = performance.now();
    const rows = b.w.length, G = this.frames ?? 1;
    if (rows % G !== 0) throw new DriftlabError(`a batch of ${rows} rows is not whole clips of ${G} frames`);
    const n = Math.min(this.slots.length, rows / G);
    const bounds = shardBounds(rows, G, n);
    const all = batchArrays(this.config, rows, b);
    const settled = await Promise.allSettled(this.slots.slice(0, n).map(async (s, k) => {
      const [from, to] = [bounds[k], bounds[k + 1]];
      const feeds: Record<string, FeedArray> = {};
      for (const [name, a] of Object.entries(all)) {
        const per = a.data.length / rows;
        feeds[name] = { type: a.type, data: a.data.slice(from * per, to * per), dims: [to - from, ...a.dims.slice(1)] };
      }
      const bytes = s.built.has(to - from) ? undefined : this.graph(to - from);
      const r = await s.call({ rows: to - from, bytes, feeds }, Object.values(feeds).map((f) => f.data.buffer as ArrayBuffer));
      if (bytes) s.built.add(to - from);
      return r.loss!;
    }));
    // every worker has answered (a failure ends them all, and none may be ended mid-run)
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const losses = settled.map((r) => (r as PromiseFulfilledResult<number>).value);
    const share = Array.from({ length: n }, (_, k) => (bounds[k + 1] - bounds[k]) / rows);
    let loss = 0;
    for (let k = 0; k < n; k++) loss += share[k] * losses[k];
    // a non-finite loss keeps the last good state (as the tfjs engine does, which never applies it)
    if (!Number.isFinite(loss)) return { loss, gradNorm: NaN };
    const t1 = performance.now();
    this.combine(share);
    const t2 = performance.now();
    const feeds: Record<string, OrtTensor> = { ...this.gFeeds, ...stepScalarFeeds(this.ort, this.adam, h) };
    this.state.feed(feeds);
    const r = await this.optimizer.run(feeds);
    this.state.update(r);
    this.layout.specs.forEach((s, i) => this.params.set(r[`new_p:${s.name}`].data as Float32Array, this.layout.offsets[i]));
    Object.assign(this.phases, { grads: t1 - t0, combine: t2 - t1, optimizer: performance.now() - t2 });
    return { loss, gradNorm: (r.grad_norm.data as Float32Array)[0] };
  }

  /** grad = sum_k share_k g_k, in worker order, float64 per element */
  private combine(share: number[]): void {
    const out = this.grad, g = this.slots.slice(0, share.length).map((s) => s.grad);
    if (g.length === 1) { out.set(g[0]); return; }
    if (g.length === 2) {
      const [a, b] = g, [sa, sb] = share;
      for (let i = 0; i < out.length; i++) out[i] = sa * a[i] + sb * b[i];
      return;
    }
    for (let i = 0; i < out.length; i++) {
      let acc = 0;
      for (let k = 0; k < g.length; k++) acc += share[k] * g[k][i];
      out[i] = acc;
    }
  }

  /** Release every session and end every worker (idempotent). */
  async release(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const slots = this.slots;
    this.slots = [];
    await Promise.all(slots.map((s) => s.end()));
    await this.optimizer.release();
    this.state.clear();
  }
}
