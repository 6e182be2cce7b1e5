import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../dist/src/backend.js';
import { SPEC_UNET } from '../dist/src/diffusion/config.js';
import { lossAndGrad } from '../dist/src/diffusion/grad.js';
import { UNetModel } from '../dist/src/diffusion/model.js';
import { DEFAULT_OBJECTIVE } from '../dist/src/diffusion/objective.js';
import { makeSchedule } from '../dist/src/diffusion/schedule.js';
import { Rng } from '../dist/src/util/rng.js';
await initBackend('wasm',{quiet:true});
const B=64, model = new UNetModel(SPEC_UNET, 0), s = makeSchedule(), rng = new Rng(0);
const batch = { x0: rng.normals(B * 784), eps: rng.normals(B * 784), t: Int32Array.from({ length: B }, () => rng.int(1000)) };
lossAndGrad(model, s, DEFAULT_OBJECTIVE, batch);
const prof = await tf.profile(() => lossAndGrad(model, s, DEFAULT_OBJECTIVE, batch));
const name = process.argv[2] ?? 'Sum';
const m = new Map();
for (const k of prof.kernels.filter(k => k.name === name)) { const key = JSON.stringify(k.inputShapes) + ' -> ' + JSON.stringify(k.outputShapes); const e = m.get(key) ?? {ms:0,n:0}; e.ms += k.kernelTimeMs; e.n++; m.set(key, e); }
for (const [k,e] of [...m.entries()].sort((a,b)=>b[1].ms-a[1].ms).slice(0,12)) console.log(e.ms.toFixed(1).padStart(7), 'x'+e.n, k);
