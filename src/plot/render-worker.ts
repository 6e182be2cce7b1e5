/**
 * Worker half of render-sync.ts: renders figure jobs (async vega + resvg) for a caller that
 * blocks on a shared flag. Posts {error?} on the job port, then wakes the caller.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { renderSpecFile } from './figure.js';

const port = workerData.port as MessagePort;
parentPort!.on('message', async (m: { specFile: string; outputs: string[]; scale?: number; flag: SharedArrayBuffer }) => {
  const flag = new Int32Array(m.flag);
  try {
    await renderSpecFile(m.specFile, m.outputs, { scale: m.scale });
    port.postMessage({});
  } catch (e) {
    const err = e as Error;
    port.postMessage({ error: err?.message ?? String(e), user: err?.name === 'DriftlabError' });
  } finally {
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  }
});
