/** probe: gradient graph, 32 rows, 1 thread: 2 sessions sequential vs concurrent (Promise.all) vs 1 session 2 threads on 64 rows */
import { SPEC_UNET } from '../src/diffusion/config.js';
import { cpuSessionOptions, loadOrt } from '../src/engine/onnx-engine.js';
import { buildTrainGraph } from '../src/engine/train-graph.js';
import { referenceStepFeeds } from './train-step-feeds.js';
const st = await loadOrt(); const ort = st.ort!;
const g32 = buildTrainGraph(SPEC_UNET, { rows: 32 }).bytes, g64 = buildTrainGraph(SPEC_UNET, { rows: 64 }).bytes;
const mk = (b: Uint8Array, th: number) => ort.InferenceSession.create(b, cpuSessionOptions(th).options as any);
const s1 = await mk(g32, 1), s2 = await mk(g32, 1), s64 = await mk(g64, 2);
const f32 = referenceStepFeeds(ort, 32, () => 1), f64 = referenceStepFeeds(ort, 64, () => 1);
const pick = (f: any, s: any) => Object.fromEntries(s.inputNames.map((n: string) => [n, f[n]]));
const a = pick(f32, s1), b = pick(f64, s64);
const T = async (fn: () => Promise<unknown>) => { const t0 = performance.now(); await fn(); return performance.now() - t0; };
await s1.run(a); await s2.run(a); await s64.run(b);
for (let r = 0; r < 3; r++) {
  const seq = await T(async () => { await s1.run(a); await s2.run(a); });
  const par = await T(() => Promise.all([s1.run(a), s2.run(a)]));
  const one = await T(() => s64.run(b));
  console.log(`64 rows: 2x1-thread sequential ${seq.toFixed(0)} ms, concurrent ${par.toFixed(0)} ms, 1 session 2 threads ${one.toFixed(0)} ms`);
}
