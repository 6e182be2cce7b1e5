/**
 * The image U-Net (UNet2DModel blueprint): parameter layout, initialisation and forward pass.
 *
 *   x: [B,H,W,Cin], t: [B] (float timesteps), labels: [B] int (numClasses = null class)
 *   -> [B,H,W,Cout]
 *
 * Encoder level i: layersPerBlock ResBlocks (+ attention), each pushes a skip; a stride-2 conv
 * between levels. Middle: ResBlock, attention, ResBlock. Decoder level i (deepest first):
 * layersPerBlock ResBlocks on concat(h, skip) (+ attention); nearest x2 + conv between levels.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../util/rng.js';
import { UNetConfig, validateUNetConfig } from './config.js';
import type { Ops } from '../engine/ops.js';
import { tfOps } from '../engine/tf-ops.js';
import { ParamStore, Params, attention, conv, groupNorm, linear, param, resBlock, silu, timestepFeatures, upsample } from './layers.js';

export type Init = 'uniform' | 'zeros' | 'ones' | 'normal';
export interface ParamSpec {
  name: string;
  shape: number[];
  /** fan-in for PyTorch-default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
  fanIn: number;
  init: Init;
}

/** The full, ordered list of parameters a config implies. Order defines the flat layout. */
export function unetParamSpecs(c: UNetConfig): ParamSpec[] {
  validateUNetConfig(c);
  const specs: ParamSpec[] = [];
  const add = (name: string, shape: number[], fanIn: number, init: Init = 'uniform') => specs.push({ name, shape, fanIn, init });
  const lin = (n: string, i: number, o: number, init: Init = 'uniform') => { add(`${n}.weight`, [i, o], i, init); add(`${n}.bias`, [o], i, init); };
  const cv = (n: string, k: number, i: number, o: number, init: Init = 'uniform') => { add(`${n}.weight`, [k, k, i, o], i * k * k, init); add(`${n}.bias`, [o], i * k * k, init); };
  const gn = (n: string, ch: number) => { add(`${n}.weight`, [ch], 1, 'ones'); add(`${n}.bias`, [ch], 1, 'zeros'); };
  const temb = c.timeEmbedHidden;
  const res = (n: string, i: number, o: number) => {
    gn(`${n}.norm1`, i); cv(`${n}.conv1`, 3, i, o); lin(`${n}.time_emb_proj`, temb, o);
    gn(`${n}.norm2`, o); cv(`${n}.conv2`, 3, o, o);
    if (i !== o) cv(`${n}.conv_shortcut`, 1, i, o);
  };
  const attn = (n: string, ch: number) => {
    gn(`${n}.group_norm`, ch); lin(`${n}.to_q`, ch, ch); lin(`${n}.to_k`, ch, ch); lin(`${n}.to_v`, ch, ch);
    lin(`${n}.to_out`, ch, ch, 'zeros'); // zero-init: every attention block starts as the identity
  };
  lin('time_embedding.linear_1', c.timeEmbedDim, temb);
  lin('time_embedding.linear_2', temb, temb);
  if (c.numClasses > 0) add('class_embedding.weight', [c.numClasses + 1, temb], 1, 'normal');
  const ch = c.blockOutChannels;
  cv('conv_in', 3, c.inChannels, ch[0]);
  const skipCh: number[] = [];
  let prev = ch[0];
  for (let i = 0; i < ch.length; i++) {
    for (let j = 0; j < c.layersPerBlock; j++) {
      res(`down_blocks.${i}.resnets.${j}`, prev, ch[i]);
      prev = ch[i];
      if (c.attention[i]) attn(`down_blocks.${i}.attentions.${j}`, ch[i]);
      skipCh.push(prev);
    }
    if (i < ch.length - 1) cv(`down_blocks.${i}.downsamplers.0.conv`, 3, prev, prev);
  }
  const last = ch[ch.length - 1];
  res('mid_block.resnets.0', last, last);
  if (c.midAttention) attn('mid_block.attentions.0', last);
  res('mid_block.resnets.1', last, last);
  for (let u = 0; u < ch.length; u++) {
    const i = ch.length - 1 - u;
    for (let j = 0; j < c.layersPerBlock; j++) {
      res(`up_blocks.${u}.resnets.${j}`, prev + skipCh.pop()!, ch[i]);
      prev = ch[i];
      if (c.attention[i]) attn(`up_blocks.${u}.attentions.${j}`, ch[i]);
    }
    if (i > 0) cv(`up_blocks.${u}.upsamplers.0.conv`, 3, prev, prev);
  }
  gn('conv_norm_out', prev);
  cv('conv_out', 3, prev, c.outChannels);
  return specs;
}

export function countParams(specs: ParamSpec[]): number {
  return specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}

/** Deterministic initial values (same seed -> same bytes on every backend). */
export function initParamValues(specs: ParamSpec[], seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed).fork('unet-init');
  const out = new Map<string, Float32Array>();
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    if (s.init === 'ones') v.fill(1);
    else if (s.init === 'uniform') {
      const bound = 1 / Math.sqrt(s.fanIn);
      for (let i = 0; i < n; i++) v[i] = (2 * rng.uniform() - 1) * bound;
    } else if (s.init === 'normal') for (let i = 0; i < n; i++) v[i] = rng.normal();
    out.set(s.name, v);
  }
  return out;
}

/**
 * U-Net forward on tfjs tensors. Returns the raw network output (epsilon, v or x0 depending on
 * the objective). labels may be omitted for unconditional models; for conditional models omitted
 * labels mean the null class.
 */
export function unetForward(P: ParamStore, c: UNetConfig, x: tf.Tensor4D, t: tf.Tensor1D, labels?: tf.Tensor1D): tf.Tensor4D {
  return unetApply(tfOps, P, c, x, t, labels) as tf.Tensor4D;
}

/**
 * The forward pass over any Ops (tfjs tensors, or an ONNX graph being built):
 *   x: [B,H,W,Cin], t: [B] float, labels: [B] int -> [B,H,W,Cout]
 */
/**
 * Called after every block of the U-Net with a name for what may be inserted there (the video
 * model puts temporal attention at these points) and the block's resolution level.
 */
export type BlockHook<T> = (name: string, level: number, h: T) => T;

/** `addTemb` may add to the time embedding [N, temb] before its SiLU (the video model's frame positions). */
export function unetApply<T>(o: Ops<T>, P: Params<T>, c: UNetConfig, x: T, t: T, labels?: T, hook?: BlockHook<T>, addTemb?: (temb: T) => T): T {
  const after = (name: string, level: number, h: T) => (hook ? hook(name, level, h) : h);
  const { normGroups: g, normEps: eps, attentionHeads: heads } = c;
  let temb = linear(P, 'time_embedding.linear_1', timestepFeatures(t, c.timeEmbedDim, o), o); // [B, temb]
  temb = linear(P, 'time_embedding.linear_2', silu(temb, o), o);
  if (c.numClasses > 0) temb = o.add(temb, o.embedding(param(P, 'class_embedding.weight'), labels, o.shape(x)[0]));
  if (addTemb) temb = addTemb(temb);
  const tact = silu(temb, o); // every ResBlock sees SiLU(temb)
  const ch = c.blockOutChannels;
  let h = conv(P, 'conv_in', x, 1, o);
  const skips: T[] = [];
  for (let i = 0; i < ch.length; i++) {
    for (let j = 0; j < c.layersPerBlock; j++) {
      h = resBlock(P, `down_blocks.${i}.resnets.${j}`, h, tact, g, eps, o);
      if (c.attention[i]) h = attention(P, `down_blocks.${i}.attentions.${j}`, h, heads, g, eps, o);
      h = after(`down_blocks.${i}.temp_attentions.${j}`, i, h);
      skips.push(h);
    }
    if (i < ch.length - 1) h = conv(P, `down_blocks.${i}.downsamplers.0.conv`, h, 2, o);
  }
  h = resBlock(P, 'mid_block.resnets.0', h, tact, g, eps, o);
  if (c.midAttention) h = attention(P, 'mid_block.attentions.0', h, heads, g, eps, o);
  h = after('mid_block.temp_attentions.0', ch.length - 1, h);
  h = resBlock(P, 'mid_block.resnets.1', h, tact, g, eps, o);
  for (let u = 0; u < ch.length; u++) {
    const i = ch.length - 1 - u;
    for (let j = 0; j < c.layersPerBlock; j++) {
      h = o.concat([h, skips.pop()!], 3); // diffusers: torch.cat([h, skip], dim=1)
      h = resBlock(P, `up_blocks.${u}.resnets.${j}`, h, tact, g, eps, o);
      if (c.attention[i]) h = attention(P, `up_blocks.${u}.attentions.${j}`, h, heads, g, eps, o);
      h = after(`up_blocks.${u}.temp_attentions.${j}`, i, h);
    }
    if (i > 0) h = upsample(P, `up_blocks.${u}.upsamplers.0`, h, o);
  }
  h = silu(groupNorm(P, 'conv_norm_out', h, g, eps, o), o);
  return conv(P, 'conv_out', h, 1, o);
}
