/**
 * Where a data-parallel onnx training step (engine/onnx-train-dp.ts) spends its wall time:
 * the workers' gradient graphs, the host sum of their gradients, the optimizer graph on the main
 * thread; reference network, batch 64, --workers workers x 1 thread, the optimizer session at 1
 * and at 2 intra-op threads (two trainers, steps interleaved), medians of --rounds.
 *
 *   node dist/bench/profile-dp-step.js [--workers 2] [--rounds 7]
 */
import { SPEC_UNET } from '../src/diffusion/config.js';
import { modelParamSpecs } from '../src/diffusion/arch.js';
import { flatLayout, joinFlat } from '../src/diffusion/model.js';
import { initParamValues } from '../src/diffusion/unet.js';
import { DEFAULT_ADAMW } from '../src/diffusion/optim.js';
import { OnnxDpTrainer } from '../src/engine/onnx-train-dp.js';
import { Rng } from '../src/util/rng.js';

const argv = process.argv;
const opt = (n: string, d: string) => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1] : d);
const workers = Number(opt('workers', '2')), rounds = Number(opt('rounds', '7'));
const layout = flatLayout(modelParamSpecs(SPEC_UNET));
const p = joinFlat(layout, initParamValues(layout.specs, 0)), n = p.length, B = 64, D = 28 * 28;
const rng = new Rng(0);
const batch = { xt: rng.normals(B * D), t: Int32Array.from({ length: B }, () => rng.int(1000)), target: rng.normals(B * D), w: new Float32Array(B).fill(1) };
const h = { lr: 1e-4, step: 1, maxNorm: 1, emaDecay: 0.999 };
const arms: OnnxDpTrainer[] = [];
for (const optimizerThreads of [1, 2]) {
  const t = await OnnxDpTrainer.create(SPEC_UNET, layout, DEFAULT_ADAMW, B, undefined, { workers, optimizerThreads });
  t.setState({ p: p.slice(), m: new Float32Array(n), v: new Float32Array(n), ema: p.slice() });
  arms.push(t);
}
for (const a of arms) { await a.step(batch, h); await a.step(batch, h); }
const rec = arms.map(() => [] as { wall: number; grads: number; combine: number; optimizer: number }[]);
for (let i = 0; i < rounds; i++) {
  for (const [k, a] of arms.entries()) {
    const t0 = performance.now();
    await a.step(batch, h);
    rec[k].push({ wall: performance.now() - t0, ...a.phases });
  }
}
const med = (v: number[]) => { const s = [...v].sort((a, b) => a - b); return s[s.length >> 1]; };
rec.forEach((r, k) => console.log(`optimizer ${k + 1} thread(s): step ${med(r.map((x) => x.wall)).toFixed(0)} ms; grads ${med(r.map((x) => x.grads)).toFixed(0)}, combine ${med(r.map((x) => x.combine)).toFixed(1)}, optimizer ${med(r.map((x) => x.optimizer)).toFixed(1)} ms (medians of ${rounds}, interleaved)`));
for (const a of arms) await a.release();
