/**
 * Worker thread of the data-parallel trainer: holds a replica of the U-Net on its own backend,
 * reads the current parameters from shared memory, and writes scale * gradient of its shard
 * into its own shared gradient buffer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend, BackendName } from '../backend.js';
import { lossAndGrad, TrainBatch } from './grad.js';
import { UNetModel } from './model.js';
import { makeSchedule } from './schedule.js';

const wd = workerData as {
  backend: BackendName; model: any; schedule: any; objective: any;
  paramsSab: SharedArrayBuffer; gradSab: SharedArrayBuffer;
};

async function main() {
  await initBackend(wd.backend, { quiet: true });
  const model = new UNetModel(wd.model, 0);
  const schedule = makeSchedule(wd.schedule);
  const params = new Float32Array(wd.paramsSab);
  const grad = new Float32Array(wd.gradSab);
  parentPort!.on('message', (msg: { batch: TrainBatch; scale: number }) => {
    try {
      model.setFlat(params);
      grad.fill(0);
      const { loss } = lossAndGrad(model, schedule, wd.objective, msg.batch, msg.scale, grad);
      parentPort!.postMessage({ loss });
    } catch (e) {
      parentPort!.postMessage({ error: (e as Error).message });
    }
  });
  parentPort!.postMessage({ ready: true });
}

main().catch((e) => parentPort!.postMessage({ error: (e as Error).message }));
