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
import type { Params } from '../diffusion/layers.js';
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

export function videoParamSpecs(c: UNetConfig): ParamSpec[] {
  const specs = unetParamSpecs(c);
  const tc = temporalOf(c.video!);
  for (const [name, level] of temporalSites(c)) specs.push(...temporalSpecs(name, c.blockOutChannels[level], tc));
  return specs;
}

/** Forward over folded frames; `frames` defaults to the configured window. */
export function videoApply<T>(o: Ops<T>, P: Params<T>, c: UNetConfig, x: T, t: T, labels?: T, frames = c.video!.frames): T {
  const v = c.video!;
  const tc = temporalOf(v);
  const sites = new Set(temporalSites(c).map(([n]) => n));
  return unetApply(o, P, c, x, t, labels, (name, _level, h) =>
    sites.has(name) ? temporalAttention(o, P, name, h, frames, tc, c.normGroups, c.normEps) : h);
}
