/**
 * The space-time U-Net: identity at initialisation (= the per-frame image model), temporal
 * attention against a float64 reference, the causal mask, gradients, and ONNX export.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { ensureWasm } from '../helpers/backend.js';
import { UNetConfig } from '../../src/diffusion/config.js';
import { UNetModel } from '../../src/diffusion/model.js';
import { initParamValues } from '../../src/diffusion/unet.js';
import { modelParamSpecs } from '../../src/diffusion/arch.js';
import { lossAndGrad } from '../../src/diffusion/grad.js';
import { makeSchedule } from '../../src/diffusion/schedule.js';
import { DEFAULT_OBJECTIVE } from '../../src/diffusion/objective.js';
import { temporalAttention } from '../../src/video/temporal.js';
import { tfOps } from '../../src/engine/tf-ops.js';
import { getVideoPreset } from '../../src/video/presets.js';
import { exportOnnx } from '../../src/engine/export.js';
import { OnnxUNet } from '../../src/engine/onnx-engine.js';
import { requireOrt } from '../engine/helpers.js';
import { Rng } from '../../src/util/rng.js';

const VIDEO: UNetConfig = getVideoPreset('mmnist-tiny').model;
const { video: _v, ...IMAGE } = VIDEO;
const F = VIDEO.video!.frames;

/** Random values for every parameter, temporal ones included (unless keepTemporalInit). */
function randomValues(cfg: UNetConfig, seed: number, keepTemporalInit = false): Map<string, Float32Array> {
  const specs = modelParamSpecs(cfg);
  const vals = initParamValues(specs, seed);
  const rng = new Rng(seed + 7);
  for (const s of specs) {
    if (keepTemporalInit && s.name.includes('temp_attentions')) continue;
    const v = vals.get(s.name)!;
    for (let i = 0; i < v.length; i++) v[i] += 0.3 * rng.normal() / Math.sqrt(s.fanIn);
  }
  return vals;
}

function forward(cfg: UNetConfig, vals: Map<string, Float32Array>, x: Float32Array, t: Float32Array): Float32Array {
  const m = new UNetModel(cfg, vals);
  try {
    const S = cfg.sampleSize;
    return tf.tidy(() => m.forward(tf.tensor4d(x, [t.length, S, S, 1]), tf.tensor1d(t)).dataSync() as Float32Array);
  } finally { m.dispose(); }
}

test('an image checkpoint loaded into the video model gives exactly the per-frame image model', async () => {
  await ensureWasm();
  const img = randomValues(IMAGE, 1);
  const vid = initParamValues(modelParamSpecs(VIDEO), 99);
  for (const [k, v] of img) vid.set(k, v); // spatial weights by name; temporal keep their init (to_out = 0)
  const rng = new Rng(2);
  const x = rng.normals(2 * F * 256);
  const t = Float32Array.from({ length: 2 * F }, () => rng.int(1000));
  const a = forward(IMAGE, img, x, t), b = forward(VIDEO, vid, x, t);
  assert.ok(Buffer.from(a.buffer).equals(Buffer.from(b.buffer)), 'video model at init differs from the image model');
});

test('frames interact through temporal attention; the causal mask hides the future exactly', async () => {
  await ensureWasm();
  const rng = new Rng(3);
  const x = rng.normals(F * 256);
  const t = Float32Array.from({ length: F }, () => rng.int(1000));
  const x2 = x.slice();
  for (let i = (F - 1) * 256; i < F * 256; i++) x2[i] += 1; // perturb the last frame only
  for (const causal of [false, true]) {
    const cfg = { ...VIDEO, video: { ...VIDEO.video!, causal } };
    const vals = randomValues(cfg, 4);
    const a = forward(cfg, vals, x, t), b = forward(cfg, vals, x2, t);
    let earlier = 0;
    for (let i = 0; i < (F - 1) * 256; i++) earlier = Math.max(earlier, Math.abs(a[i] - b[i]));
    if (causal) assert.is(earlier, 0, 'causal model: earlier frames saw the last frame');
    else assert.ok(earlier > 1e-4, 'non-causal model: earlier frames ignore the last frame');
  }
});

test('temporal attention equals a float64 reference (GN per frame, heads, relative bias, mask)', async () => {
  await ensureWasm();
  const Fr = 3, H = 2, W = 2, C = 4, G = 2, heads = 2, M = 5, d = C / heads;
  const rng = new Rng(5);
  const P = new Map<string, Float32Array>();
  const set = (n: string, len: number, scale = 0.5) => P.set(n, Float32Array.from({ length: len }, () => scale * rng.normal()));
  set('b.group_norm.weight', C); set('b.group_norm.bias', C);
  for (const p of ['to_q', 'to_k', 'to_v', 'to_out']) { set(`b.${p}.weight`, C * C); set(`b.${p}.bias`, C); }
  set('b.rel_pos_bias', heads * (2 * M - 1), 1);
  const h = rng.normals(2 * Fr * H * W * C); // B = 2 clips
  for (const causal of [false, true]) {
    const got = tf.tidy(() => {
      const PT = new Map([...P].map(([k, v]) => [k, tf.tensor(v, k.endsWith('rel_pos_bias') ? [heads, 2 * M - 1] : k.includes('.weight') && !k.includes('group_norm') ? [C, C] : [C])]));
      return temporalAttention(tfOps, PT, 'b', tf.tensor4d(h, [2 * Fr, H, W, C]), Fr, { heads, maxFrames: M, causal }, G, 1e-5).dataSync() as Float32Array;
    });
    // reference in float64
    const idx = (b: number, f: number, p: number, c: number) => (((b * Fr + f) * H * W + p) * C + c);
    const gn = new Float64Array(h.length);
    for (let bf = 0; bf < 2 * Fr; bf++) for (let g = 0; g < G; g++) {
      let s = 0, ss = 0; const n = H * W * (C / G);
      for (let p = 0; p < H * W; p++) for (let c = g * (C / G); c < (g + 1) * (C / G); c++) s += h[bf * H * W * C + p * C + c];
      const mu = s / n;
      for (let p = 0; p < H * W; p++) for (let c = g * (C / G); c < (g + 1) * (C / G); c++) ss += (h[bf * H * W * C + p * C + c] - mu) ** 2;
      const inv = 1 / Math.sqrt(ss / n + 1e-5);
      for (let p = 0; p < H * W; p++) for (let c = g * (C / G); c < (g + 1) * (C / G); c++) {
        const i = bf * H * W * C + p * C + c;
        gn[i] = (h[i] - mu) * inv * P.get('b.group_norm.weight')![c] + P.get('b.group_norm.bias')![c];
      }
    }
    const lin = (name: string, v: Float64Array | number[]) => Array.from({ length: C }, (_, o) => {
      let s = P.get(`${name}.bias`)![o];
      for (let i = 0; i < C; i++) s += v[i] * P.get(`${name}.weight`)![i * C + o];
      return s;
    });
    const want = new Float64Array(h.length);
    for (let b = 0; b < 2; b++) for (let p = 0; p < H * W; p++) {
      const row = (f: number) => Array.from({ length: C }, (_, c) => gn[idx(b, f, p, c)]);
      const q = [...Array(Fr).keys()].map((f) => lin('b.to_q', row(f)));
      const k = [...Array(Fr).keys()].map((f) => lin('b.to_k', row(f)));
      const v = [...Array(Fr).keys()].map((f) => lin('b.to_v', row(f)));
      for (let i = 0; i < Fr; i++) {
        const att = new Array(C).fill(0);
        for (let hd = 0; hd < heads; hd++) {
          const sc = [...Array(Fr).keys()].map((j) => {
            if (causal && j > i) return -Infinity;
            let s = 0; for (let e = 0; e < d; e++) s += q[i][hd * d + e] * k[j][hd * d + e];
            return s / Math.sqrt(d) + P.get('b.rel_pos_bias')![hd * (2 * M - 1) + (j - i + M - 1)];
          });
          const mx = Math.max(...sc); const ex = sc.map((s) => Math.exp(s - mx)); const z = ex.reduce((a, c) => a + c);
          for (let j = 0; j < Fr; j++) for (let e = 0; e < d; e++) att[hd * d + e] += (ex[j] / z) * v[j][hd * d + e];
        }
        const out = lin('b.to_out', att);
        for (let c = 0; c < C; c++) want[idx(b, i, p, c)] = h[idx(b, i, p, c)] + out[c];
      }
    }
    let err = 0;
    for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
    assert.ok(err < 1e-5, `causal=${causal}: max err ${err}`);
  }
});

test('gradients reach the temporal parameters (relative bias included)', async () => {
  await ensureWasm();
  const vals = randomValues(VIDEO, 8);
  const m = new UNetModel(VIDEO, vals);
  const rng = new Rng(9);
  const n = 2 * F;
  const { grad } = lossAndGrad(m, makeSchedule(), DEFAULT_OBJECTIVE, { x0: rng.normals(n * 256), eps: rng.normals(n * 256), t: Int32Array.from({ length: n }, () => rng.int(1000)) });
  const i = m.specs.findIndex((s) => s.name === 'mid_block.temp_attentions.0.rel_pos_bias');
  const o = m.layout.offsets[i];
  let g = 0;
  for (let k = 0; k < m.specs[i].shape.reduce((a, b) => a * b); k++) g = Math.max(g, Math.abs(grad[o + k]));
  assert.ok(g > 0, 'no gradient reached rel_pos_bias');
  m.dispose();
});

test('ONNX export of the video model matches tfjs', async () => {
  await ensureWasm();
  await requireOrt();
  const vals = randomValues(VIDEO, 10);
  const unet = await OnnxUNet.create(exportOnnx(VIDEO, vals).bytes, VIDEO, { threads: 1 });
  try {
    const rng = new Rng(11);
    const n = 2 * F;
    const x = rng.normals(n * 256);
    const t = Float32Array.from({ length: n }, (_, i) => (i % F < 3 ? 0 : 500 + i));
    const ref = forward(VIDEO, vals, x, t);
    const got = await unet.run(x, n, t);
    let d = 0;
    for (let i = 0; i < ref.length; i++) d = Math.max(d, Math.abs(ref[i] - got[i]));
    assert.ok(d < 1e-4, `max |onnx - tfjs| = ${d}`);
  } finally { await unet.release(); }
});

test('concat conditioning: context rows are zero, targets depend on the context, ONNX matches tfjs', async () => {
  await ensureWasm();
  await requireOrt();
  // 3 context frames as channels of 3 targets (frame embedding and broadcast paths), temporal attention among targets
  const CAT: UNetConfig = { ...VIDEO, video: { ...VIDEO.video!, conditioning: 'concat' } };
  const K = CAT.video!.contextFrames, S = CAT.sampleSize, fr = S * S;
  const vals = randomValues(CAT, 12);
  const rng = new Rng(13);
  const n = 2 * F;
  const x = rng.normals(n * fr);
  const t = Float32Array.from({ length: n }, (_, i) => (i % F < K ? 0 : 300 + i));
  const ref = forward(CAT, vals, x, t);
  for (let b = 0; b < 2; b++) for (let i = b * F * fr; i < (b * F + K) * fr; i++) assert.is(ref[i], 0);
  const x2 = x.slice();
  for (let i = 0; i < fr; i++) x2[i] += 1; // change one context frame of clip 0 only
  const ref2 = forward(CAT, vals, x2, t);
  let d0 = 0, d1 = 0;
  for (let i = K * fr; i < F * fr; i++) d0 = Math.max(d0, Math.abs(ref2[i] - ref[i]));
  for (let i = F * fr; i < 2 * F * fr; i++) d1 = Math.max(d1, Math.abs(ref2[i] - ref[i]));
  assert.ok(d0 > 1e-3, `clip 0's targets ignore its context (max change ${d0})`);
  assert.is(d1, 0, 'clip 1 must not see clip 0');
  const unet = await OnnxUNet.create(exportOnnx(CAT, vals).bytes, CAT, { threads: 1 });
  try {
    const got = await unet.run(x, n, t);
    let d = 0;
    for (let i = 0; i < ref.length; i++) d = Math.max(d, Math.abs(ref[i] - got[i]));
    assert.ok(d < 1e-4, `max |onnx - tfjs| = ${d}`);
  } finally { await unet.release(); }
});

test('contextLevel: zero-initialised it is the plain concat model; trained, the targets read the context timestep; ONNX matches tfjs', async () => {
  await ensureWasm();
  await requireOrt();
  const CAT: UNetConfig = { ...VIDEO, video: { ...VIDEO.video!, conditioning: 'concat' } };
  const LVL: UNetConfig = { ...CAT, video: { ...CAT.video!, contextLevel: true } };
  const K = CAT.video!.contextFrames, S = CAT.sampleSize, fr = S * S, n = 2 * F;
  const plain = randomValues(CAT, 21);
  const rng = new Rng(22);
  const x = rng.normals(n * fr);
  const tAt = (ctxT: number) => Float32Array.from({ length: n }, (_, i) => (i % F < K ? ctxT : 400 + i));
  // the level layer at its zero init, every other weight the plain model's: the same outputs
  const zeroInit = new Map(plain);
  for (const s of modelParamSpecs(LVL)) if (s.name.startsWith('context_level.')) zeroInit.set(s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1)));
  const a = forward(CAT, plain, x, tAt(50)), b = forward(LVL, zeroInit, x, tAt(50));
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  assert.ok(d < 1e-6, `zero-initialised level layer changed the output by ${d}`);
  // the plain model ignores the context's timestep; with level weights the targets depend on it
  const a2 = forward(CAT, plain, x, tAt(300));
  assert.equal(Array.from(a2), Array.from(a), 'plain concat must not read the context timestep');
  const vals = randomValues(LVL, 23);
  const y50 = forward(LVL, vals, x, tAt(50)), y300 = forward(LVL, vals, x, tAt(300));
  let dt = 0;
  for (let i = K * fr; i < F * fr; i++) dt = Math.max(dt, Math.abs(y300[i] - y50[i]));
  assert.ok(dt > 1e-3, `targets ignore the context level (max change ${dt})`);
  const unet = await OnnxUNet.create(exportOnnx(LVL, vals).bytes, LVL, { threads: 1 });
  try {
    const got = await unet.run(x, n, tAt(300));
    let e = 0;
    for (let i = 0; i < y300.length; i++) e = Math.max(e, Math.abs(y300[i] - got[i]));
    assert.ok(e < 1e-4, `max |onnx - tfjs| = ${e}`);
  } finally { await unet.release(); }
});

test.run();
