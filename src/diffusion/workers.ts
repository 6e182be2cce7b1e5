/**
 * Data-parallel gradients on worker threads (one backend each, so each uses one core).
 * The batch is split into contiguous shards; worker k returns (B_k / B) * grad of its shard's
 * mean loss, so the sum over workers equals the gradient of the full batch's mean loss (up to
 * float rounding).
 */
import { Worker } from 'node:worker_threads';
import { BackendName } from '../backend.js';
import { UNetConfig } from './config.js';
import { TrainBatch, sliceBatch } from './grad.js';
import { ObjectiveConfig } from './objective.js';
import { ScheduleConfig } from './schedule.js';

interface Slot {
  worker: Worker;
  grad: Float32Array;
}

export class GradWorkerPool {
  private constructor(private slots: Slot[], private params: Float32Array) {}

  static async create(n: number, opts: {
    backend: BackendName; model: UNetConfig; schedule: ScheduleConfig; objective: ObjectiveConfig; size: number;
  }): Promise<GradWorkerPool> {
    const paramsSab = new SharedArrayBuffer(opts.size * 4);
    const slots: Slot[] = [];
    const url = new URL('./grad-worker.js', import.meta.url);
    await Promise.all(Array.from({ length: n }, async () => {
      const gradSab = new SharedArrayBuffer(opts.size * 4);
      const worker = new Worker(url, {
        workerData: { backend: opts.backend, model: opts.model, schedule: opts.schedule, objective: opts.objective, paramsSab, gradSab },
      });
      await new Promise<void>((resolve, reject) => {
        worker.once('message', (m) => (m.ready ? resolve() : reject(new Error(`training worker failed to start: ${m.error}`))));
        worker.once('error', reject);
      });
      slots.push({ worker, grad: new Float32Array(gradSab) });
    }));
    return new GradWorkerPool(slots, new Float32Array(paramsSab));
  }

  get size(): number {
    return this.slots.length;
  }

  /** Loss of the full batch; the summed gradient is written into `out`. */
  async lossAndGrad(params: Float32Array, batch: TrainBatch, out: Float32Array): Promise<number> {
    this.params.set(params);
    const B = batch.t.length;
    const G = batch.frames ?? 1; // shards hold whole clips
    const groups = B / G;
    const n = Math.min(this.slots.length, groups);
    const bounds = Array.from({ length: n + 1 }, (_, k) => G * Math.round((k * groups) / n));
    const losses = await Promise.all(this.slots.slice(0, n).map((slot, k) => new Promise<number>((resolve, reject) => {
      const shard = sliceBatch(batch, bounds[k], bounds[k + 1]);
      slot.worker.once('message', (m) => (m.error ? reject(new Error(m.error)) : resolve(m.loss)));
      slot.worker.postMessage({ batch: shard, scale: (bounds[k + 1] - bounds[k]) / B });
    })));
    out.set(this.slots[0].grad);
    for (let k = 1; k < n; k++) {
      const g = this.slots[k].grad;
      for (let i = 0; i < out.length; i++) out[i] += g[i];
    }
    return losses.reduce((a, l, k) => a + (l * (bounds[k + 1] - bounds[k])) / B, 0);
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots = [];
  }
}
