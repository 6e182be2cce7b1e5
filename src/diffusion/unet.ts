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
import { ParamStore, attention, conv, groupNorm, linear, param, resBlock, silu, timestepFeatures, upsample } from './layers.js';

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
 * U-Net forward. Returns the raw network output (epsilon, v or x0 depending on the objective).
 * labels may be omitted for unconditional models; for conditional models omitted labels mean
 * the null class.
 */
export function unetForward(P: ParamStore, c: UNetConfig, x: tf.Tensor4D, t: tf.Tensor1D, labels?: tf.Tensor1D): tf.Tensor4D {
  const { normGroups: g, normEps: eps, attentionHeads: heads } = c;
  const B = x.shape[0];
  let temb = linear(P, 'time_embedding.linear_1', timestepFeatures(t, c.timeEmbedDim));
  temb = linear(P, 'time_embedding.linear_2', silu(temb));
  if (c.numClasses > 0) {
    const lab = labels ?? tf.fill([B], c.numClasses, 'int32');
    // one-hot @ table instead of gather: wasm has no UnsortedSegmentSum for gather's gradient
    const onehot = tf.oneHot(lab.toInt(), c.numClasses + 1).toFloat() as tf.Tensor2D;
    temb = tf.add(temb, tf.matMul(onehot, param(P, 'class_embedding.weight') as tf.Tensor2D));
  }
  const tact = silu(temb) as tf.Tensor2D; // every ResBlock sees SiLU(temb)
  const ch = c.blockOutChannels;
  let h = conv(P, 'conv_in', x);
  const skips: tf.Tensor4D[] = [];
  for (let i = 0; i < ch.length; i++) {
    for (let j = 0; j < c.layersPerBlock; j++) {
      h = resBlock(P, `down_blocks.${i}.resnets.${j}`, h, tact, g, eps);
      if (c.attention[i]) h = attention(P, `down_blocks.${i}.attentions.${j}`, h, heads, g, eps);
      skips.push(h);
    }
    if (i < ch.length - 1) h = conv(P, `down_blocks.${i}.downsamplers.0.conv`, h, 2);
  }
  h = resBlock(P, 'mid_block.resnets.0', h, tact, g, eps);
  if (c.midAttention) h = attention(P, 'mid_block.attentions.0', h, heads, g, eps);
  h = resBlock(P, 'mid_block.resnets.1', h, tact, g, eps);
  for (let u = 0; u < ch.length; u++) {
    const i = ch.length - 1 - u;
    for (let j = 0; j < c.layersPerBlock; j++) {
      h = tf.concat([h, skips.pop()!], 3) as tf.Tensor4D;
      h = resBlock(P, `up_blocks.${u}.resnets.${j}`, h, tact, g, eps);
      if (c.attention[i]) h = attention(P, `up_blocks.${u}.attentions.${j}`, h, heads, g, eps);
    }
    if (i > 0) h = upsample(P, `up_blocks.${u}.upsamplers.0`, h);
  }
  h = silu(groupNorm(P, 'conv_norm_out', h, g, eps)) as tf.Tensor4D;
  return conv(P, 'conv_out', h);
}
