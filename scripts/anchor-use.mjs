#!/usr/bin/env node
// Does an anchored video model (train-video --anchor-frames 1) read its anchor slot?
//
//   node scripts/anchor-use.mjs CKPT [--windows 64] [--seed 0] [--engine onnx|tfjs]
//
// On held-out anchored windows (test digits; the clip's frame 0 in the anchor slot, then frames s..s+F-2
// with s drawn from 1..40), the x0 MSE (pixels in [0,1]) of the target at t = 300, 700, 900 with four
// anchors: the true one, another clip's frame 0, a blank frame, and the window's own oldest frame (what
// correctors show, src/drift/context.ts plainView). Equal columns: the anchor is not read.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const lib = (f) => import(path.join(root, 'dist', f));
const argv = process.argv.slice(2);
const flag = (n, d) => { const i = argv.indexOf(`--${n}`); if (i < 0) return d; const v = argv[i + 1]; argv.splice(i, 2); return v; };
const W = Number(flag('windows', 64)), seed = Number(flag('seed', 0)), engine = flag('engine', 'onnx');
if (argv.length !== 1 || !(Number.isInteger(W) && W >= 2) || !Number.isInteger(seed)) {
  console.error('usage: node scripts/anchor-use.mjs CKPT [--windows 64] [--seed 0] [--engine onnx|tfjs]');
  process.exit(2);
}
const tf = await import('@tensorflow/tfjs');
const { loadPipeline } = await lib('src/diffusion/pipeline.js');
const { anchoredWindow } = await lib('src/video/clips.js');
const { MovingMnist } = await lib('datasets/moving-mnist/index.js');
const { Rng } = await lib('src/util/rng.js');
const { outputToX0Eps } = await lib('src/diffusion/objective.js');
const p = await loadPipeline(argv[0], 'ema', { engine, threads: 2 });
const m = p.config.model, v = m.video;
if (!v || (v.anchorFrames ?? 0) !== 1) { console.error(`driftlab: error: ${argv[0]} is not a video model with one anchor slot (train-video --anchor-frames 1)`); process.exit(1); }
const F = v.frames, K = v.contextFrames, S = m.sampleSize, fr = S * S;
const data = p.config.training.data;
const mm = new MovingMnist({ ...data, split: 'test' }, seed);
const rng = new Rng(seed).fork('anchor-use');
const wins = Array.from({ length: W }, (_, k) => anchoredWindow(mm, data.pool, k, F, 1, 1 + rng.int(40)));
const anchors = {
  'true anchor': (k) => wins[k].subarray(0, fr),
  "another clip's frame 0": (k) => wins[(k + 1) % W].subarray(0, fr),
  'blank anchor': () => new Float32Array(fr).fill(-1),
  "the window's oldest frame": (k) => wins[k].subarray(fr, 2 * fr),
};
console.log(`| t | ${Object.keys(anchors).join(' | ')} |\n|---|${Object.keys(anchors).map(() => '---|').join('')}`);
for (const t of [300, 700, 900]) {
  const abar = p.schedule.alphasCumprod[t], a = Math.sqrt(abar), c = Math.sqrt(1 - abar);
  const eps = rng.normals(W * fr);
  const row = [];
  for (const anc of Object.values(anchors)) {
    let sum = 0;
    for (let k0 = 0; k0 < W; k0 += 16) {
      const B = Math.min(16, W - k0), win = new Float32Array(B * F * fr), tRow = new Float32Array(B * F);
      for (let b = 0; b < B; b++) {
        const k = k0 + b, tg = wins[k].subarray(K * fr);
        win.set(wins[k], b * F * fr);
        win.set(anc(k), b * F * fr);
        for (let i = 0; i < fr; i++) win[(b * F + K) * fr + i] = a * tg[i] + c * eps[k * fr + i];
        tRow[b * F + K] = t;
      }
      const x = tf.tensor4d(win, [B * F, S, S, 1]);
      const out = await p.net(x, tRow);
      x.dispose();
      const all = await out.data();
      out.dispose();
      for (let b = 0; b < B; b++) {
        const k = k0 + b, tg = wins[k].subarray(K * fr);
        for (let i = 0; i < fr; i++) {
          const xt = win[(b * F + K) * fr + i];
          const x0 = Math.max(-1, Math.min(1, outputToX0Eps(p.config.objective.prediction, all[(b * F + K) * fr + i], xt, abar).x0));
          const d = (x0 - tg[i]) / 2;
          sum += d * d;
        }
      }
    }
    row.push((sum / (W * fr)).toFixed(5));
  }
  console.log(`| ${t} | ${row.join(' | ')} |`);
}
await p.dispose?.();
