/**
 * The space-time U-Net (Ho et al. 2022): the image U-Net's layers applied to every frame (frames
 * folded into the batch) with temporal attention inserted after the blocks of chosen levels.
 *
 *   x: [B*F, H, W, C] (clip-major: frame index fastest), t: [B*F] one timestep per frame
 *   (Diffusion Forcing style: context frames clean or lightly noised, targets noised)
 *
 * Temporal blocks are named `down_blocks.i.temp_attentions.j`, `mid_block.temp_attentions.0`,
 * `up_blocks.u.temp_attentions.j`, and their parameters come after all image parameters, so an
 * image checkpoint fills every spatial weight by name; with zero-initialised output projections
 * the video model then computes exactly the per-frame image model.
 */
import type { Ops } from '../engine/ops.js';
import type { UNetConfig, VideoConfig } from '../diffusion/config.js';
import { Params, linear, param, timestepFeatures } from '../diffusion/layers.js';
import { ParamSpec, unetApply, unetParamSpecs } from '../diffusion/unet.js';
import { TemporalConfig, temporalAttention, temporalSpecs } from './temporal.js';

const temporalOf = (v: VideoConfig): TemporalConfig => ({ heads: v.temporalHeads, maxFrames: v.maxFrames, causal: v.causal });

/** Where temporal blocks go: [name, level] in forward order. */
export function temporalSites(c: UNetConfig): [string, number][] {
  const v = c.video!;
  const L = c.blockOutChannels.length;
  const sites: [string, number][] = [];
  for (let i = 0; i < L; i++) for (let j = 0; j < c.layersPerBlock; j++) if (v.temporal[i]) sites.push([`down_blocks.${i}.temp_attentions.${j}`, i]);
  if (v.temporalMid) sites.push(['mid_block.temp_attentions.0', L - 1]);
  for (let u = 0; u < L; u++) for (let j = 0; j < c.layersPerBlock; j++) if (v.temporal[L - 1 - u]) sites.push([`up_blocks.${u}.temp_attentions.${j}`, L - 1 - u]);
  return sites;
}

const isConcat = (c: UNetConfig) => c.video!.conditioning === 'concat';
/** concat: the U-Net each target runs through takes the target and the K context frames as channels */
const spatialConfig = (c: UNetConfig): UNetConfig => (isConcat(c) ? { ...c, inChannels: c.inChannels * (1 + c.video!.contextFrames), video: undefined } : c);
/** concat with several targets: one learned row per target position, added to the time embedding */
const hasFrameEmbedding = (c: UNetConfig) => isConcat(c) && c.video!.frames - c.video!.contextFrames > 1;
/** concat with contextLevel: the newest context frame's timestep, embedded, joins each target's time embedding */
const hasContextLevel = (c: UNetConfig) => isConcat(c) && !!c.video!.contextLevel && c.video!.contextFrames > 0;

export function videoParamSpecs(c: UNetConfig): ParamSpec[] {
  const specs = unetParamSpecs(spatialConfig(c));
  const v = c.video!;
  const tc = temporalOf(v);
  for (const [name, level] of temporalSites(c)) specs.push(...temporalSpecs(name, c.blockOutChannels[level], tc));
  if (hasFrameEmbedding(c)) specs.push({ name: 'frame_embedding.weight', shape: [v.frames - v.contextFrames, c.timeEmbedHidden], fanIn: 1, init: 'zeros' });
  if (hasContextLevel(c)) {
    specs.push({ name: 'context_level.weight', shape: [c.timeEmbedDim, c.timeEmbedHidden], fanIn: c.timeEmbedDim, init: 'zeros' });
    specs.push({ name: 'context_level.bias', shape: [c.timeEmbedHidden], fanIn: c.timeEmbedDim, init: 'zeros' });
  }
  return specs;
}

/**
 * Forward over folded frames; `frames` (F) defaults to the configured window.
 *   x: [B*F, S, S, C], t: [B*F] -> [B*F, S, S, Cout]
 * With concat conditioning the first K frames of each window are context: their output rows
 * are zeros (no loss or sampler reads them) and only the F-K targets run through the network.
 */
export function videoApply<T>(o: Ops<T>, P: Params<T>, c: UNetConfig, x: T, t: T, labels?: T, frames = c.video!.frames): T {
  const v = c.video!;
  const tc = temporalOf(v);
  const sites = new Set(temporalSites(c).map(([n]) => n));
  const temporal = (F: number) => (name: string, _level: number, h: T) =>
    sites.has(name) ? temporalAttention(o, P, name, h, F, tc, c.normGroups, c.normEps) : h;
  if (!isConcat(c)) return unetApply(o, P, c, x, t, labels, temporal(frames));
  const K = v.contextFrames, N = frames - K;
  if (N < 1) throw new Error(`a ${frames}-frame window leaves no targets after ${K} context frames`);
  const [, S, W, C] = o.shape(x);
  const x5 = o.reshape(x, [-1, frames, S, W, C]); // [B, F, S, W, C]
  const ctx = o.slice(x5, 1, 0, K); // [B, K, S, W, C]
  // [B, K, S, W, C] -> [B, 1, S, W, K*C] -> every target: [B, N, S, W, K*C]
  const ctxCh = o.reshape(o.transpose(ctx, [0, 2, 3, 1, 4]), [-1, 1, S, W, K * C]);
  const ctxAll = N > 1 ? o.broadcastTo(ctxCh, [-1, N, S, W, K * C]) : ctxCh;
  const tgt = o.slice(x5, 1, K, N); // [B, N, S, W, C]
  const xin = o.reshape(o.concat([tgt, ctxAll], 4), [-1, S, W, C * (1 + K)]); // [B*N, S, W, C(1+K)]
  const tw = o.reshape(t, [-1, frames]); // [B, F]
  const tt = o.reshape(o.slice(tw, 1, K, N), [-1]); // [B*N]
  const addFrame = hasFrameEmbedding(c)
    ? (temb: T) => { const [, E] = o.shape(temb); return o.reshape(o.add(o.reshape(temb, [-1, N, E]), param(P, 'frame_embedding.weight')), [-1, E]); }
    : undefined;
  let addLevel: ((temb: T) => T) | undefined;
  if (hasContextLevel(c)) {
    const tc = o.reshape(o.slice(tw, 1, K - 1, 1), [-1]); // [B]: the newest context frame's level
    const lvl = linear(P, 'context_level', timestepFeatures(tc, c.timeEmbedDim, o), o); // [B, E]
    addLevel = (temb: T) => { const [, E] = o.shape(temb); return o.reshape(o.add(o.reshape(temb, [-1, N, E]), o.reshape(lvl, [-1, 1, E])), [-1, E]); };
  }
  const addTemb = addFrame && addLevel ? (temb: T) => addLevel!(addFrame(temb)) : addFrame ?? addLevel;
  const y = unetApply(o, P, spatialConfig(c), xin, tt, labels, temporal(N), addTemb); // [B*N, S, W, Cout]
  const y5 = o.reshape(y, [-1, N, S, W, c.outChannels]);
  return o.reshape(o.concat([o.mul(ctx, 0), y5], 1), [-1, S, W, c.outChannels]); // context rows: zeros
}
