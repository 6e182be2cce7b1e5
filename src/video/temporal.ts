/**
 * Temporal self-attention (Ho et al. 2022, Video Diffusion Models): at every spatial position,
 * multi-head attention across the F frames of a clip.
 *
 *   h: [B*F, H, W, C] (frames folded into the batch, frame index fastest)
 *   -> GN per frame -> [B*H*W, F, C] -> q, k, v -> softmax(q k^T / sqrt(d) + bias[i,j] (+ mask)) v
 *   -> out projection (zero-initialised, so the block starts as the identity) -> residual
 *
 * Frame positions enter as a learned relative position bias (one scalar per head and offset
 * j - i, Shaw et al. / T5 style without buckets, zero-initialised). An optional causal mask
 * stops frame i from attending to frames j > i.
 */
import type { Ops } from '../engine/ops.js';
import { Params, groupNorm, linear, param } from '../diffusion/layers.js';
import type { ParamSpec } from '../diffusion/unet.js';

export interface TemporalConfig {
  heads: number;
  /** largest number of frames the relative position table covers */
  maxFrames: number;
  causal: boolean;
}

/** Parameter specs of one temporal attention block with C channels, named `${name}.*`. */
export function temporalSpecs(name: string, C: number, tc: TemporalConfig): ParamSpec[] {
  const s: ParamSpec[] = [
    { name: `${name}.group_norm.weight`, shape: [C], fanIn: 1, init: 'ones' },
    { name: `${name}.group_norm.bias`, shape: [C], fanIn: 1, init: 'zeros' },
  ];
  for (const p of ['to_q', 'to_k', 'to_v', 'to_out']) {
    const init = p === 'to_out' ? 'zeros' : 'uniform';
    s.push({ name: `${name}.${p}.weight`, shape: [C, C], fanIn: C, init }, { name: `${name}.${p}.bias`, shape: [C], fanIn: C, init });
  }
  s.push({ name: `${name}.rel_pos_bias`, shape: [tc.heads, 2 * tc.maxFrames - 1], fanIn: 1, init: 'zeros' });
  return s;
}

/** One-hot map R [2M-1, F*F] with R[(j - i) + M - 1, i*F + j] = 1, so table @ R gathers bias[h, i, j]. */
function relativeOneHot(F: number, M: number): Float32Array {
  const r = new Float32Array((2 * M - 1) * F * F);
  for (let i = 0; i < F; i++) for (let j = 0; j < F; j++) r[(j - i + M - 1) * F * F + i * F + j] = 1;
  return r;
}

/** h: [B*F, H, W, C] -> same shape; F = frames per clip. */
export function temporalAttention<T>(o: Ops<T>, P: Params<T>, name: string, h: T, F: number, tc: TemporalConfig, groups: number, eps: number): T {
  const [, H, W, C] = o.shape(h);
  if (F > tc.maxFrames) throw new Error(`temporal attention over ${F} frames exceeds maxFrames ${tc.maxFrames}`);
  const heads = tc.heads, d = C / heads, N = H * W;
  // [B*F, H, W, C] -> [B, F, N, C] -> [B, N, F, C] -> [B*N, F, C]
  const seq = (t: T) => o.reshape(o.transpose(o.reshape(t, [-1, F, N, C]), [0, 2, 1, 3]), [-1, C]);
  const hn = seq(groupNorm(P, `${name}.group_norm`, h, groups, eps, o)); // [B*N*F, C]
  const split = (t: T) => o.transpose(o.reshape(t, [-1, F, heads, d]), [0, 2, 1, 3]); // [B*N, heads, F, d]
  const q = split(linear(P, `${name}.to_q`, hn, o));
  const k = split(linear(P, `${name}.to_k`, hn, o));
  const v = split(linear(P, `${name}.to_v`, hn, o));
  let scores = o.mul(o.matMul(q, k, true), 1 / Math.sqrt(d)); // [B*N, heads, F, F]
  const table = param(P, `${name}.rel_pos_bias`); // [heads, 2M-1]
  const bias = o.reshape(o.matMul(table, o.constant(relativeOneHot(F, tc.maxFrames), [2 * tc.maxFrames - 1, F * F])), [heads, F, F]);
  scores = o.add(scores, bias);
  if (tc.causal) {
    const mask = new Float32Array(F * F);
    for (let i = 0; i < F; i++) for (let j = i + 1; j < F; j++) mask[i * F + j] = -1e9;
    scores = o.add(scores, o.constant(mask, [F, F]));
  }
  const att = o.matMul(o.softmax(scores), v); // [B*N, heads, F, d]
  const merged = o.reshape(o.transpose(att, [0, 2, 1, 3]), [-1, C]); // [B*N*F, C]
  const out = linear(P, `${name}.to_out`, merged, o);
  // [B*N*F, C] -> [B, N, F, C] -> [B, F, N, C] -> [B*F, H, W, C]
  const back = o.reshape(o.transpose(o.reshape(out, [-1, N, F, C]), [0, 2, 1, 3]), [-1, H, W, C]);
  return o.add(h, back);
}
