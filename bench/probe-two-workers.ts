/** probe: gradient graph, 32 rows, 1 thread, in 2 worker threads concurrently vs 1 session 2 threads on 64 rows */
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { SPEC_UNET } from '../src/diffusion/config.js';
import { cpuSessionOptions, loadOrt } from '../src/engine/onnx-engine.js';
import { buildTrainGraph } from '../src/engine/train-graph.js';
import { referenceStepFeeds } from './train-step-feeds.js';
const st = await loadOrt(); const ort = st.ort!;
const pick = (f: any, s: any) => Object.fromEntries(s.inputNames.map((n: string) => [n, f[n]]));
if (!isMainThread) {
  const s = await ort.InferenceSession.create(buildTrainGraph(SPEC_UNET, { rows: 32 }).bytes, cpuSessionOptions(1).options as any);
  const a = pick(referenceStepFeeds(ort, 32, () => 1), s);
  await s.run(a);
  parentPort!.on('message', async () => { const r = await s.run(a); parentPort!.postMessage((r.loss.data as Float32Array)[0]); });
  parentPort!.postMessage('ready');
} else {
  const w = [0, 1].map(() => new Worker(new URL(import.meta.url)));
  await Promise.all(w.map((x) => new Promise((r) => x.once('message', r))));
  const s64 = await ort.InferenceSession.create(buildTrainGraph(SPEC_UNET, { rows: 64 }).bytes, cpuSessionOptions(2).options as any);
  const b = pick(referenceStepFeeds(ort, 64, () => 1), s64);
  await s64.run(b);
  const T = async (fn: () => Promise<unknown>) => { const t0 = performance.now(); await fn(); return performance.now() - t0; };
  for (let r = 0; r < 4; r++) {
    const par = await T(() => Promise.all(w.map((x) => new Promise((res) => { x.once('message', res); x.postMessage(0); }))));
    const one = await T(() => s64.run(b));
    console.log(`64 rows: 2 workers x 1 thread ${par.toFixed(0)} ms, 1 session 2 threads ${one.toFixed(0)} ms`);
  }
  for (const x of w) await x.terminate();
}
