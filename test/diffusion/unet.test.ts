import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { SPEC_UNET, type UNetConfig } from '../../src/diffusion/config.js';
import { getPreset } from '../../src/diffusion/presets.js';
import { countParams, initParamValues, unetParamSpecs } from '../../src/diffusion/unet.js';
import { UNetModel } from '../../src/diffusion/model.js';
import { attention, groupNorm, timestepFeatures, type ParamStore } from '../../src/diffusion/layers.js';
import { lossAndGrad, type TrainBatch } from '../../src/diffusion/grad.js';
import { makeSchedule } from '../../src/diffusion/schedule.js';
import { DEFAULT_OBJECTIVE } from '../../src/diffusion/objective.js';
import { Rng } from '../../src/util/rng.js';
import { backendDataIds, ensureWasm, maxAbsDiff, useBackend } from '../helpers/backend.js';

const TINY = getPreset('mnist-tiny').model;

test.before(async () => { await ensureWasm(); });

// ---------------------------------------------------------------------------------------------
// (a) parameter count by hand from UNET_SPEC.md
// ---------------------------------------------------------------------------------------------
const TEMB = 128;
const gn = (c: number) => 2 * c;
const conv3 = (cin: number, cout: number) => 9 * cin * cout + cout;
const conv1 = (cin: number, cout: number) => cin * cout + cout;
const lin = (i: number, o: number) => i * o + o;
const resBlock = (cin: number, cout: number) =>
  gn(cin) + conv3(cin, cout) + lin(TEMB, cout) + gn(cout) + conv3(cout, cout) + (cin !== cout ? conv1(cin, cout) : 0);
const attn = (c: number) => gn(c) + 4 * lin(c, c); // GN + q, k, v, out

test('SPEC_UNET parameter count, by hand from UNET_SPEC.md', () => {
  const timeMlp = 32 * 128 + 128 + 128 * 128 + 128;
  const convIn = 9 * 1 * 32 + 32;
  const encoder =
    resBlock(32, 32) + conv3(32, 32) + // L0 + Down(32)
    resBlock(32, 64) + conv3(64, 64) + // L1 + Down(64)
    resBlock(64, 64) + attn(64); // L2
  const mid = resBlock(64, 64) + attn(64) + resBlock(64, 64);
  const decoder =
    resBlock(128, 64) + attn(64) + conv3(64, 64) + // U2 + Up
    resBlock(128, 64) + conv3(64, 64) + // U1 + Up
    resBlock(96, 32); // U0
  const out = 2 * 32 + (9 * 32 * 1 + 1);
  const total = timeMlp + convIn + encoder + mid + decoder + out;
  // the intermediate numbers written out, so a reader can check them on paper
  assert.is(timeMlp, 20736);
  assert.is(resBlock(32, 32), 22752);
  assert.is(resBlock(32, 64), 65984);
  assert.is(resBlock(64, 64), 82368);
  assert.is(resBlock(128, 64), 127616);
  assert.is(resBlock(96, 32), 44416);
  assert.is(attn(64), 16768);
  assert.is(total, 20736 + 320 + (22752 + 9248 + 65984 + 36928 + 82368 + 16768) + (2 * 82368 + 16768) +
    (127616 + 16768 + 36928 + 127616 + 36928 + 44416) + 64 + 289);

  assert.is(countParams(unetParamSpecs(SPEC_UNET)), total);
  const m = new UNetModel(SPEC_UNET, 0);
  try {
    assert.is(m.numParams, total);
    assert.is(m.layout.size, total);
    assert.is(m.getFlat().length, total);
  } finally { m.dispose(); }

  // class-conditional mnist-small: + a (10 classes + null) x 128 embedding table, nothing else
  const small = getPreset('mnist-small').model;
  assert.is(countParams(unetParamSpecs(small)) - total, 11 * 128);
  const names = new Set(unetParamSpecs(SPEC_UNET).map((s) => s.name));
  const extra = unetParamSpecs(small).filter((s) => !names.has(s.name));
  assert.equal(extra.map((s) => [s.name, s.shape]), [['class_embedding.weight', [11, 128]]]);
});

test('param names are unique and shapes follow the tfjs layouts', () => {
  for (const c of [SPEC_UNET, TINY, getPreset('mnist-base').model]) {
    const specs = unetParamSpecs(c);
    assert.is(new Set(specs.map((s) => s.name)).size, specs.length);
  }
  const byName = new Map(unetParamSpecs(SPEC_UNET).map((s) => [s.name, s.shape]));
  assert.equal(byName.get('conv_in.weight'), [3, 3, 1, 32]);
  assert.equal(byName.get('down_blocks.1.resnets.0.conv_shortcut.weight'), [1, 1, 32, 64]);
  assert.equal(byName.get('up_blocks.2.resnets.0.conv1.weight'), [3, 3, 96, 32]);
  assert.equal(byName.get('time_embedding.linear_1.weight'), [32, 128]);
  assert.equal(byName.get('conv_out.weight'), [3, 3, 32, 1]);
  assert.ok(!byName.has('up_blocks.2.upsamplers.0.conv.weight'), 'no upsampler at the top level');
  assert.ok(!byName.has('down_blocks.2.downsamplers.0.conv.weight'), 'no downsampler at the bottom level');
});

// ---------------------------------------------------------------------------------------------
// layers against float64 references
// ---------------------------------------------------------------------------------------------
test('timestep features: [sin(t f_i), cos(t f_i)], f_i = exp(-ln(1e4) i / (d/2))', async () => {
  await useBackend('wasm');
  const ts = [0, 1, 37, 999];
  const got = tf.tidy(() => timestepFeatures(tf.tensor1d(ts), 32).arraySync() as number[][]);
  for (let b = 0; b < ts.length; b++) {
    for (let i = 0; i < 16; i++) {
      const f = Math.exp((-Math.log(10000) * i) / 16);
      assert.ok(Math.abs(got[b][i] - Math.sin(ts[b] * f)) < 2e-4, `sin t=${ts[b]} i=${i}`);
      assert.ok(Math.abs(got[b][16 + i] - Math.cos(ts[b] * f)) < 2e-4, `cos t=${ts[b]} i=${i}`);
    }
  }
});

function randParams(names: [string, number[]][], rng: Rng, scale = 0.5): ParamStore {
  const P: ParamStore = new Map();
  for (const [n, shape] of names) {
    const size = shape.reduce((a, b) => a * b, 1);
    const v = rng.normals(size).map((x) => x * scale + (n.endsWith('norm.weight') ? 1 : 0));
    P.set(n, tf.tensor(v, shape));
  }
  return P;
}

test('groupNorm and multi-head attention match float64 references', async () => {
  await useBackend('wasm');
  const rng = new Rng(99);
  const [B, H, W, C, G, heads] = [2, 2, 3, 8, 4, 2];
  const N = H * W, d = C / heads;
  const x = rng.normals(B * N * C);
  const P = randParams([
    ['a.group_norm.weight', [C]], ['a.group_norm.bias', [C]],
    ['a.to_q.weight', [C, C]], ['a.to_q.bias', [C]], ['a.to_k.weight', [C, C]], ['a.to_k.bias', [C]],
    ['a.to_v.weight', [C, C]], ['a.to_v.bias', [C]], ['a.to_out.weight', [C, C]], ['a.to_out.bias', [C]],
  ], rng);
  const get = (n: string) => P.get(n)!.dataSync() as Float32Array;
  // float64 GroupNorm (PyTorch: contiguous channel groups, biased variance)
  const gw = get('a.group_norm.weight'), gb = get('a.group_norm.bias');
  const hn = new Float64Array(B * N * C);
  for (let b = 0; b < B; b++) for (let g = 0; g < G; g++) {
    const cs = C / G;
    let s = 0, ss = 0;
    for (let p = 0; p < N; p++) for (let c = g * cs; c < (g + 1) * cs; c++) s += x[(b * N + p) * C + c];
    const mean = s / (N * cs);
    for (let p = 0; p < N; p++) for (let c = g * cs; c < (g + 1) * cs; c++) ss += (x[(b * N + p) * C + c] - mean) ** 2;
    const v = ss / (N * cs);
    for (let p = 0; p < N; p++) for (let c = g * cs; c < (g + 1) * cs; c++) {
      const i = (b * N + p) * C + c;
      hn[i] = ((x[i] - mean) / Math.sqrt(v + 1e-5)) * gw[c] + gb[c];
    }
  }
  const linear64 = (inp: Float64Array, name: string) => {
    const w = get(`${name}.weight`), bias = get(`${name}.bias`);
    const out = new Float64Array(inp.length);
    for (let r = 0; r < inp.length / C; r++) for (let o = 0; o < C; o++) {
      let acc = bias[o];
      for (let i = 0; i < C; i++) acc += inp[r * C + i] * w[i * C + o];
      out[r * C + o] = acc;
    }
    return out;
  };
  const q = linear64(hn, 'a.to_q'), k = linear64(hn, 'a.to_k'), v = linear64(hn, 'a.to_v');
  const o = new Float64Array(B * N * C);
  for (let b = 0; b < B; b++) for (let h = 0; h < heads; h++) for (let i = 0; i < N; i++) {
    const sc = new Float64Array(N);
    for (let j = 0; j < N; j++) {
      let dot = 0;
      for (let e = 0; e < d; e++) dot += q[(b * N + i) * C + h * d + e] * k[(b * N + j) * C + h * d + e];
      sc[j] = dot / Math.sqrt(d);
    }
    const mx = Math.max(...sc);
    let z = 0;
    for (let j = 0; j < N; j++) { sc[j] = Math.exp(sc[j] - mx); z += sc[j]; }
    for (let e = 0; e < d; e++) {
      let acc = 0;
      for (let j = 0; j < N; j++) acc += (sc[j] / z) * v[(b * N + j) * C + h * d + e];
      o[(b * N + i) * C + h * d + e] = acc;
    }
  }
  const proj = linear64(o, 'a.to_out');
  const ref = proj.map((val, i) => val + x[i]);
  const [gotGn, gotAttn] = tf.tidy(() => {
    const xt = tf.tensor4d(x, [B, H, W, C]);
    return [groupNorm(P, 'a.group_norm', xt, G, 1e-5).dataSync(), attention(P, 'a', xt, heads, G, 1e-5).dataSync()];
  });
  assert.ok(maxAbsDiff(gotGn, hn) < 1e-4, `groupNorm diff ${maxAbsDiff(gotGn, hn)}`);
  assert.ok(maxAbsDiff(gotAttn, ref) < 1e-4, `attention diff ${maxAbsDiff(gotAttn, ref)}`);
  for (const t of P.values()) t.dispose();
});

// ---------------------------------------------------------------------------------------------
// (b) shapes, (d) zero-init attention
// ---------------------------------------------------------------------------------------------
test('forward output shape [B,28,28,1] on wasm (SPEC_UNET, mnist-small with labels, mnist-tiny)', async () => {
  await useBackend('wasm');
  for (const [cfg, labels] of [[SPEC_UNET, false], [getPreset('mnist-small').model, true], [TINY, true], [TINY, false]] as [UNetConfig, boolean][]) {
    const m = new UNetModel(cfg, 1);
    try {
      const shape = tf.tidy(() => {
        const y = m.forward(tf.zeros([2, 28, 28, 1]) as tf.Tensor4D, tf.tensor1d([0, 999]), labels ? tf.tensor1d([3, 10], 'int32') : undefined);
        assert.ok(Array.from(y.dataSync()).every(Number.isFinite), 'finite output');
        return y.shape;
      });
      assert.equal(shape, [2, 28, 28, 1], `${cfg.blockOutChannels}`);
    } finally { m.dispose(); }
  }
});

test('attention blocks start as identity: to_out weight and bias are zero', async () => {
  await useBackend('wasm');
  for (const cfg of [SPEC_UNET, TINY]) {
    const specs = unetParamSpecs(cfg);
    const vals = initParamValues(specs, 5);
    const outs = specs.filter((s) => /attentions\.\d+\.to_out\.(weight|bias)$/.test(s.name));
    // SPEC: L2, mid, U2 -> 3 blocks; tiny: level 1 down + up, mid -> 3 blocks
    assert.is(outs.length, 6, `${cfg.blockOutChannels}: to_out params`);
    for (const s of outs) assert.ok(vals.get(s.name)!.every((v) => v === 0), `${s.name} is zero`);
    // the q/k/v projections are not zero
    const q = specs.find((s) => s.name.endsWith('to_q.weight'))!;
    assert.ok(vals.get(q.name)!.some((v) => v !== 0));
  }
  // and the block is then exactly the identity
  const m = new UNetModel(TINY, 5);
  try {
    const rng = new Rng(1);
    const x = rng.normals(1 * 14 * 14 * 16);
    const y = tf.tidy(() => attention(m.vars as ParamStore, 'down_blocks.1.attentions.0', tf.tensor4d(x, [1, 14, 14, 16]), 1, 4, 1e-5).dataSync());
    assert.equal(Array.from(y), Array.from(x));
  } finally { m.dispose(); }
});

test('init is deterministic and PyTorch-like (U(+-1/sqrt(fan_in)), GN weight 1 / bias 0)', () => {
  const specs = unetParamSpecs(TINY);
  const a = initParamValues(specs, 3), b = initParamValues(specs, 3), c = initParamValues(specs, 4);
  let same = true, differs = false;
  for (const s of specs) {
    const va = a.get(s.name)!, vb = b.get(s.name)!, vc = c.get(s.name)!;
    same &&= va.every((v, i) => v === vb[i]);
    differs ||= va.some((v, i) => v !== vc[i]);
    if (s.init === 'uniform') assert.ok(va.every((v) => Math.abs(v) <= 1 / Math.sqrt(s.fanIn)), s.name);
  }
  assert.ok(same, 'same seed, same values');
  assert.ok(differs, 'other seed, other values');
  assert.ok(a.get('down_blocks.0.resnets.0.norm1.weight')!.every((v) => v === 1));
  assert.ok(a.get('down_blocks.0.resnets.0.norm1.bias')!.every((v) => v === 0));
  assert.is(specs.find((s) => s.name === 'down_blocks.0.resnets.0.conv1.weight')!.fanIn, 9 * 8);
});

// ---------------------------------------------------------------------------------------------
// (c) wasm == cpu with random (non-identity) parameters
// ---------------------------------------------------------------------------------------------
function randomValues(cfg: UNetConfig, seed: number): Map<string, Float32Array> {
  const specs = unetParamSpecs(cfg);
  const vals = initParamValues(specs, seed);
  const rng = new Rng(seed + 1000);
  for (const s of specs) {
    const v = vals.get(s.name)!;
    if (s.init === 'ones' || s.init === 'zeros' || s.name.includes('to_out')) {
      for (let i = 0; i < v.length; i++) v[i] += (s.init === 'ones' ? 0.2 : 0.5 / Math.sqrt(s.fanIn)) * rng.normal();
    }
  }
  return vals;
}

async function forwardOn(backend: 'cpu' | 'wasm', cfg: UNetConfig, vals: Map<string, Float32Array>, x: Float32Array, ts: number[], labels?: number[]): Promise<Float32Array> {
  await useBackend(backend);
  const m = new UNetModel(cfg, vals);
  try {
    return tf.tidy(() => m.forward(tf.tensor4d(x, [ts.length, 28, 28, 1]), tf.tensor1d(ts), labels ? tf.tensor1d(labels, 'int32') : undefined).dataSync() as Float32Array);
  } finally { m.dispose(); }
}

test('forward on wasm equals forward on cpu (mnist-tiny B=2 and SPEC_UNET B=1, random params)', async () => {
  for (const [cfg, ts, labels] of [[TINY, [17, 640], [2, 10]], [SPEC_UNET, [321], undefined]] as [UNetConfig, number[], number[] | undefined][]) {
    const vals = randomValues(cfg, 8);
    const x = new Rng(12).normals(ts.length * 784);
    const a = await forwardOn('cpu', cfg, vals, x, ts, labels);
    const b = await forwardOn('wasm', cfg, vals, x, ts, labels);
    let mx = 0;
    for (const v of a) mx = Math.max(mx, Math.abs(v));
    assert.ok(mx > 1e-2, `output not trivially small (${mx})`);
    const d = maxAbsDiff(a, b);
    assert.ok(d < 1e-4, `${cfg.blockOutChannels}: max |cpu - wasm| = ${d} (max |y| ${mx})`);
  }
  await useBackend('wasm');
});

test('labels change the output of a conditional model; omitted labels mean the null class', async () => {
  await useBackend('wasm');
  const vals = randomValues(TINY, 9);
  const x = new Rng(4).normals(784);
  const a = await forwardOn('wasm', TINY, vals, x, [100], [3]);
  const b = await forwardOn('wasm', TINY, vals, x, [100], [4]);
  const n = await forwardOn('wasm', TINY, vals, x, [100], [10]);
  const u = await forwardOn('wasm', TINY, vals, x, [100]);
  assert.ok(maxAbsDiff(a, b) > 1e-4, 'class 3 vs 4');
  assert.equal(Array.from(u), Array.from(n));
});

// ---------------------------------------------------------------------------------------------
// the whole network against a float64 reference written from UNET_SPEC.md / diffusers' UNet2DModel
// ---------------------------------------------------------------------------------------------
/** NHWC float64 image batch */
interface Img { d: Float64Array; B: number; H: number; W: number; C: number }

function refForward(cfg: UNetConfig, P: Map<string, Float32Array>, x: Img, ts: number[], labels: number[] | null): Img {
  const G = cfg.normGroups, eps = cfg.normEps, temb = cfg.timeEmbedHidden;
  const p = (n: string) => { const v = P.get(n); if (!v) throw new Error(`ref: missing ${n}`); return v; };
  const silu = (v: number) => v / (1 + Math.exp(-v));
  const lin = (inp: Float64Array, rows: number, name: string): Float64Array => {
    const w = p(`${name}.weight`), b = p(`${name}.bias`);
    const O = b.length, I = w.length / O;
    const out = new Float64Array(rows * O);
    for (let r = 0; r < rows; r++) for (let o = 0; o < O; o++) {
      let a = b[o];
      for (let i = 0; i < I; i++) a += inp[r * I + i] * w[i * O + o];
      out[r * O + o] = a;
    }
    return out;
  };
  const conv = (im: Img, name: string, stride = 1): Img => {
    const w = p(`${name}.weight`), b = p(`${name}.bias`);
    const Co = b.length, k = Math.round(Math.sqrt(w.length / (im.C * Co))), pad = (k - 1) / 2;
    const Ho = Math.floor((im.H + 2 * pad - k) / stride) + 1, Wo = Math.floor((im.W + 2 * pad - k) / stride) + 1;
    const out = new Float64Array(im.B * Ho * Wo * Co);
    for (let n = 0; n < im.B; n++) for (let oy = 0; oy < Ho; oy++) for (let ox = 0; ox < Wo; ox++) for (let o = 0; o < Co; o++) {
      let a = b[o];
      for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) {
        const iy = oy * stride + ky - pad, ix = ox * stride + kx - pad;
        if (iy < 0 || iy >= im.H || ix < 0 || ix >= im.W) continue;
        for (let i = 0; i < im.C; i++) a += im.d[((n * im.H + iy) * im.W + ix) * im.C + i] * w[((ky * k + kx) * im.C + i) * Co + o];
      }
      out[((n * Ho + oy) * Wo + ox) * Co + o] = a;
    }
    return { d: out, B: im.B, H: Ho, W: Wo, C: Co };
  };
  const gn = (im: Img, name: string, act: boolean): Img => {
    const w = p(`${name}.weight`), b = p(`${name}.bias`), cs = im.C / G, HW = im.H * im.W;
    const out = new Float64Array(im.d.length);
    for (let n = 0; n < im.B; n++) for (let g = 0; g < G; g++) {
      let s = 0, ss = 0;
      for (let q = 0; q < HW; q++) for (let c = g * cs; c < (g + 1) * cs; c++) s += im.d[(n * HW + q) * im.C + c];
      const m = s / (HW * cs);
      for (let q = 0; q < HW; q++) for (let c = g * cs; c < (g + 1) * cs; c++) ss += (im.d[(n * HW + q) * im.C + c] - m) ** 2;
      const inv = 1 / Math.sqrt(ss / (HW * cs) + eps);
      for (let q = 0; q < HW; q++) for (let c = g * cs; c < (g + 1) * cs; c++) {
        const i = (n * HW + q) * im.C + c;
        const v = (im.d[i] - m) * inv * w[c] + b[c];
        out[i] = act ? silu(v) : v;
      }
    }
    return { ...im, d: out };
  };
  const add = (a: Img, b: Img): Img => ({ ...a, d: a.d.map((v, i) => v + b.d[i]) });
  const cat = (a: Img, b: Img): Img => { // channels [a, b] (diffusers: torch.cat([h, skip], dim=1))
    const C = a.C + b.C, out = new Float64Array(a.B * a.H * a.W * C);
    for (let q = 0; q < a.B * a.H * a.W; q++) {
      for (let c = 0; c < a.C; c++) out[q * C + c] = a.d[q * a.C + c];
      for (let c = 0; c < b.C; c++) out[q * C + a.C + c] = b.d[q * b.C + c];
    }
    return { d: out, B: a.B, H: a.H, W: a.W, C };
  };
  // time embedding: sinusoidal (sin | cos) -> Linear -> SiLU -> Linear (+ class row); blocks see SiLU(temb)
  const half = cfg.timeEmbedDim / 2;
  const feats = new Float64Array(x.B * cfg.timeEmbedDim);
  for (let n = 0; n < x.B; n++) for (let i = 0; i < half; i++) {
    const a = ts[n] * Math.exp((-Math.log(10000) * i) / half);
    feats[n * cfg.timeEmbedDim + i] = Math.sin(a);
    feats[n * cfg.timeEmbedDim + half + i] = Math.cos(a);
  }
  let e = lin(lin(feats, x.B, 'time_embedding.linear_1').map(silu), x.B, 'time_embedding.linear_2');
  if (cfg.numClasses > 0) {
    const tab = p('class_embedding.weight');
    e = e.map((v, i) => v + tab[(labels ? labels[Math.floor(i / temb)] : cfg.numClasses) * temb + (i % temb)]);
  }
  const tact = e.map(silu);
  const res = (im: Img, name: string): Img => {
    let h = conv(gn(im, `${name}.norm1`, true), `${name}.conv1`);
    const tp = lin(tact, x.B, `${name}.time_emb_proj`);
    h = { ...h, d: h.d.map((v, i) => v + tp[Math.floor(i / (h.H * h.W * h.C)) * h.C + (i % h.C)]) };
    h = conv(gn(h, `${name}.norm2`, true), `${name}.conv2`);
    return add(h, P.has(`${name}.conv_shortcut.weight`) ? conv(im, `${name}.conv_shortcut`) : im);
  };
  const attn = (im: Img, name: string): Img => {
    const heads = cfg.attentionHeads, C = im.C, d = C / heads, N = im.H * im.W;
    const hn = gn(im, `${name}.group_norm`, false);
    const q = lin(hn.d, im.B * N, `${name}.to_q`), k = lin(hn.d, im.B * N, `${name}.to_k`), v = lin(hn.d, im.B * N, `${name}.to_v`);
    const o = new Float64Array(im.B * N * C);
    for (let n = 0; n < im.B; n++) for (let hd = 0; hd < heads; hd++) for (let i = 0; i < N; i++) {
      const sc = new Float64Array(N);
      let mx = -Infinity;
      for (let j = 0; j < N; j++) {
        let dot = 0;
        for (let c = hd * d; c < (hd + 1) * d; c++) dot += q[(n * N + i) * C + c] * k[(n * N + j) * C + c];
        sc[j] = dot / Math.sqrt(d);
        mx = Math.max(mx, sc[j]);
      }
      let z = 0;
      for (let j = 0; j < N; j++) { sc[j] = Math.exp(sc[j] - mx); z += sc[j]; }
      for (let c = hd * d; c < (hd + 1) * d; c++) {
        let a = 0;
        for (let j = 0; j < N; j++) a += sc[j] * v[(n * N + j) * C + c];
        o[(n * N + i) * C + c] = a / z;
      }
    }
    return add(im, { ...im, d: lin(o, im.B * N, `${name}.to_out`) });
  };
  const up = (im: Img): Img => {
    const H = im.H * 2, W = im.W * 2, out = new Float64Array(im.B * H * W * im.C);
    for (let n = 0; n < im.B; n++) for (let y = 0; y < H; y++) for (let xx = 0; xx < W; xx++) for (let c = 0; c < im.C; c++) {
      out[((n * H + y) * W + xx) * im.C + c] = im.d[((n * im.H + (y >> 1)) * im.W + (xx >> 1)) * im.C + c];
    }
    return { ...im, d: out, H, W };
  };
  const ch = cfg.blockOutChannels;
  let h = conv(x, 'conv_in');
  const skips: Img[] = [];
  for (let i = 0; i < ch.length; i++) {
    for (let j = 0; j < cfg.layersPerBlock; j++) {
      h = res(h, `down_blocks.${i}.resnets.${j}`);
      if (cfg.attention[i]) h = attn(h, `down_blocks.${i}.attentions.${j}`);
      skips.push(h);
    }
    if (i < ch.length - 1) h = conv(h, `down_blocks.${i}.downsamplers.0.conv`, 2);
  }
  h = res(h, 'mid_block.resnets.0');
  if (cfg.midAttention) h = attn(h, 'mid_block.attentions.0');
  h = res(h, 'mid_block.resnets.1');
  for (let u = 0; u < ch.length; u++) {
    const i = ch.length - 1 - u;
    for (let j = 0; j < cfg.layersPerBlock; j++) {
      h = res(cat(h, skips.pop()!), `up_blocks.${u}.resnets.${j}`);
      if (cfg.attention[i]) h = attn(h, `up_blocks.${u}.attentions.${j}`);
    }
    if (i > 0) h = conv(up(h), `up_blocks.${u}.upsamplers.0.conv`);
  }
  return conv(gn(h, 'conv_norm_out', true), 'conv_out');
}

test('forward on wasm equals a float64 reference U-Net (random params, 2 heads, labels and null class)', async () => {
  await useBackend('wasm');
  // mnist-tiny's topology at 8x8 with 2 ResBlocks per level and 2 attention heads, to keep the loops cheap
  const cfg: UNetConfig = { ...TINY, sampleSize: 8, layersPerBlock: 2, attentionHeads: 2 };
  const vals = randomValues(cfg, 31);
  const B = 2, S = cfg.sampleSize;
  const x = new Rng(32).normals(B * S * S);
  const ts = [3, 777];
  const m = new UNetModel(cfg, vals);
  try {
    for (const labels of [[4, 10], null]) {
      const got = tf.tidy(() => m.forward(tf.tensor4d(x, [B, S, S, 1]), tf.tensor1d(ts), labels ? tf.tensor1d(labels, 'int32') : undefined).dataSync());
      const ref = refForward(cfg, vals, { d: Float64Array.from(x), B, H: S, W: S, C: 1 }, ts, labels);
      assert.is(ref.d.length, got.length);
      let mx = 0;
      for (const v of ref.d) mx = Math.max(mx, Math.abs(v));
      const d = maxAbsDiff(got, ref.d);
      assert.ok(mx > 1e-2, `reference output not trivially small (${mx})`);
      assert.ok(d < 1e-4 * Math.max(1, mx), `labels ${labels}: max |wasm - float64 reference| = ${d} (max |y| ${mx})`);
    }
  } finally { m.dispose(); }
});

// ---------------------------------------------------------------------------------------------
// (e) gradient check against central finite differences
// ---------------------------------------------------------------------------------------------
test('lossAndGrad matches central finite differences (mnist-tiny, B=1, wasm)', async () => {
  await useBackend('wasm');
  const schedule = makeSchedule();
  const m = new UNetModel(TINY, 21);
  try {
    const rng = new Rng(77);
    const x0 = rng.normals(784).map((v) => Math.max(-1, Math.min(1, v * 0.5)));
    const eps = rng.normals(784);
    const label = 3, t = 300;
    const batch: TrainBatch = { x0, eps, t: Int32Array.from([t]), labels: Int32Array.from([label]) };
    const { loss, grad } = lossAndGrad(m, schedule, DEFAULT_OBJECTIVE, batch);

    // independent loss: x_t in float64 from the betas, network on wasm, MSE in float64
    let abar = 1;
    for (let i = 0; i <= t; i++) abar *= 1 - schedule.betas[i];
    const xt = Float32Array.from(x0, (v, i) => Math.sqrt(abar) * v + Math.sqrt(1 - abar) * eps[i]);
    const lossOf = (): number => {
      const out = tf.tidy(() => m.forward(tf.tensor4d(xt, [1, 28, 28, 1]), tf.tensor1d([t]), tf.tensor1d([label], 'int32')).dataSync());
      let s = 0;
      for (let i = 0; i < 784; i++) s += (out[i] - eps[i]) ** 2;
      return s / 784;
    };
    const base = m.getFlat();
    assert.ok(Math.abs(lossOf() - loss) < 1e-5 * loss, `loss ${loss} vs ${lossOf()}`);

    const off = (name: string) => m.layout.offsets[m.specs.findIndex((s) => s.name === name)];
    const size = (name: string) => m.specs.find((s) => s.name === name)!.shape.reduce((a, b) => a * b, 1);
    const argmaxIn = (name: string, from = 0, to = size(name)) => {
      let best = off(name) + from;
      for (let i = off(name) + from; i < off(name) + to; i++) if (Math.abs(grad[i]) > Math.abs(grad[best])) best = i;
      return best;
    };
    const H = TINY.timeEmbedHidden;
    const probes: [string, number][] = [
      ['conv_in.weight[0]', off('conv_in.weight')],
      ['conv_in.weight[argmax]', argmaxIn('conv_in.weight')],
      ['down_blocks.0.resnets.0.norm1.weight[argmax]', argmaxIn('down_blocks.0.resnets.0.norm1.weight')],
      ['class_embedding.weight[label row, argmax]', argmaxIn('class_embedding.weight', label * H, (label + 1) * H)],
      ['time_embedding.linear_1.bias[0]', off('time_embedding.linear_1.bias')],
      ['time_embedding.linear_1.bias[argmax]', argmaxIn('time_embedding.linear_1.bias')],
      ['mid_block.attentions.0.to_out.weight[argmax]', argmaxIn('mid_block.attentions.0.to_out.weight')],
      ['up_blocks.0.upsamplers.0.conv.weight[argmax]', argmaxIn('up_blocks.0.upsamplers.0.conv.weight')],
      ['conv_out.bias[0]', off('conv_out.bias')],
    ];
    const h = 1e-2;
    let checked = 0;
    for (const [label_, i] of probes) {
      const g = grad[i];
      if (Math.abs(g) < 1e-3) continue; // negligible: float32 differences would be noise
      const p = base.slice();
      p[i] = base[i] + h; m.setFlat(p); const lp = lossOf();
      p[i] = base[i] - h; m.setFlat(p); const lm = lossOf();
      const step = Math.fround(base[i] + h) - Math.fround(base[i] - h);
      const fd = (lp - lm) / step;
      assert.ok(Math.abs(fd - g) <= 1e-2 * Math.abs(g), `${label_}: finite difference ${fd} vs lossAndGrad ${g}`);
      if (process.env.DRIFTLAB_TEST_VERBOSE) console.log(label_, g, fd, Math.abs(fd - g) / Math.abs(g));
      checked++;
    }
    m.setFlat(base);
    assert.ok(checked >= 6, `only ${checked} probes had a non-negligible gradient`);

    // exact zeros that follow from the maths: other class rows are unused; q/k/v feed a zero to_out
    const ce = off('class_embedding.weight');
    for (let r = 0; r <= TINY.numClasses; r++) {
      if (r === label) continue;
      for (let j = 0; j < H; j++) assert.is(grad[ce + r * H + j], 0, `class row ${r}`);
    }
    for (const n of ['mid_block.attentions.0.to_q.weight', 'mid_block.attentions.0.to_k.bias', 'down_blocks.1.attentions.0.to_v.weight']) {
      for (let j = off(n); j < off(n) + size(n); j++) assert.is(Math.abs(grad[j]), 0, `${n} gradient through a zero to_out`);
    }
    // dL/d(conv_out.bias) = mean over pixels of 2 (out - eps): closed form from a forward pass
    const out = tf.tidy(() => m.forward(tf.tensor4d(xt, [1, 28, 28, 1]), tf.tensor1d([t]), tf.tensor1d([label], 'int32')).dataSync());
    let gb = 0;
    for (let i = 0; i < 784; i++) gb += (2 * (out[i] - eps[i])) / 784;
    assert.ok(Math.abs(grad[off('conv_out.bias')] - gb) < 1e-4 * Math.max(1, Math.abs(gb)), `conv_out.bias grad ${grad[off('conv_out.bias')]} vs ${gb}`);

    // scale and accumulate: into += scale * grad
    const into = new Float32Array(grad.length).fill(1);
    lossAndGrad(m, schedule, DEFAULT_OBJECTIVE, batch, 0.25, into);
    for (const i of [off('conv_out.bias'), off('conv_in.weight'), argmaxIn('conv_in.weight')]) {
      assert.ok(Math.abs(into[i] - (1 + 0.25 * grad[i])) < 1e-6, `accumulated grad at ${i}`);
    }
  } finally { m.dispose(); }
});

// ---------------------------------------------------------------------------------------------
// (f) no tensor leaks
// ---------------------------------------------------------------------------------------------
test('no tensor leak across a forward in tf.tidy and across lossAndGrad (wasm)', async () => {
  await useBackend('wasm');
  const m = new UNetModel(TINY, 2);
  try {
    const rng = new Rng(3);
    const batch: TrainBatch = { x0: rng.normals(2 * 784), eps: rng.normals(2 * 784), t: Int32Array.from([5, 900]), labels: Int32Array.from([1, 10]) };
    const schedule = makeSchedule();
    lossAndGrad(m, schedule, DEFAULT_OBJECTIVE, batch); // warm-up
    const n0 = tf.memory().numTensors, ids0 = backendDataIds();
    tf.tidy(() => { m.forward(tf.zeros([2, 28, 28, 1]) as tf.Tensor4D, tf.tensor1d([1, 2]), tf.tensor1d([0, 1], 'int32')); });
    tf.tidy(() => { m.forward(tf.zeros([1, 28, 28, 1]) as tf.Tensor4D, tf.tensor1d([1])); });
    assert.is(tf.memory().numTensors, n0, 'forward leaks');
    lossAndGrad(m, schedule, DEFAULT_OBJECTIVE, batch);
    lossAndGrad(m, schedule, { ...DEFAULT_OBJECTIVE, prediction: 'v', weighting: 'min-snr' }, batch, 0.5, new Float32Array(m.layout.size));
    assert.is(tf.memory().numTensors, n0, 'lossAndGrad leaks tensors');
    assert.is(backendDataIds(), ids0, 'lossAndGrad leaks backend buffers');
    const flat = m.getFlat();
    m.setFlat(flat);
    assert.is(tf.memory().numTensors, n0, 'setFlat leaks');
  } finally { m.dispose(); }
});

test.run();
