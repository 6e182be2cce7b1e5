/**
 * Where a training step of the spec network spends its time, per tfjs kernel (tf.profile).
 * Usage: node dist/bench/profile-step.js [--backend wasm] [--batch 64] [--fwd]
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, BackendName } from '../src/backend.js';
import { SPEC_UNET } from '../src/diffusion/config.js';
import { lossAndGrad } from '../src/diffusion/grad.js';
import { UNetModel } from '../src/diffusion/model.js';
import { DEFAULT_OBJECTIVE } from '../src/diffusion/objective.js';
import { makeSchedule } from '../src/diffusion/schedule.js';
import { Rng } from '../src/util/rng.js';

const argv = process.argv;
const opt = (n: string, d: string) => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1] : d);
await initBackend(opt('backend', 'wasm') as BackendName);
const B = Number(opt('batch', '64'));
const model = new UNetModel(SPEC_UNET, 0);
const s = makeSchedule();
const rng = new Rng(0);
const batch = { x0: rng.normals(B * 784), eps: rng.normals(B * 784), t: Int32Array.from({ length: B }, () => rng.int(1000)) };
const fwd = argv.includes('--fwd');
const step = () => {
  if (fwd) tf.tidy(() => model.forward(tf.tensor4d(batch.x0, [B, 28, 28, 1]), tf.tensor1d(Float32Array.from(batch.t))).dataSync());
  else lossAndGrad(model, s, DEFAULT_OBJECTIVE, batch);
};
step();
const t0 = performance.now();
const prof = await tf.profile(step);
const wall = performance.now() - t0;
const by = new Map<string, { ms: number; n: number }>();
for (const k of prof.kernels) {
  const e = by.get(k.name) ?? { ms: 0, n: 0 };
  e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
  e.n += 1;
  by.set(k.name, e);
}
const rows = [...by.entries()].sort((a, b) => b[1].ms - a[1].ms);
const total = rows.reduce((a, [, e]) => a + e.ms, 0);
console.log(`${fwd ? 'forward' : 'train step'} batch ${B}: wall ${wall.toFixed(0)} ms (profiled), kernels ${total.toFixed(0)} ms`);
for (const [name, e] of rows.slice(0, 25)) console.log(`${name.padEnd(28)} ${e.ms.toFixed(1).padStart(8)} ms ${((100 * e.ms) / total).toFixed(1).padStart(5)}%  x${e.n}`);
