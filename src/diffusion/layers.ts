/**
 * Functional layers over a parameter store (NHWC throughout). Parameters are looked up by
 * diffusers-style names ("down_blocks.0.resnets.0.conv1.weight"); layouts are tfjs-native:
 * conv weights [KH,KW,Cin,Cout], linear weights [in,out].
 *
 * Every layer is generic over the tensor ops it is written in (engine/ops.ts). The last argument
 * `o` defaults to tfjs (training and the reference: the first overload of each layer, with ranked
 * tensor types); the ONNX exporter passes its graph builder and gets the same layer as graph
 * nodes. Batch sizes never appear as numbers here (-1 in reshapes), because an exported graph
 * learns its batch size only at run time.
 */
import * as tf from '@tensorflow/tfjs';
import type { Ops } from '../engine/ops.js';
import { tfOps } from '../engine/tf-ops.js';

export type Params<T> = ReadonlyMap<string, T>;
export type ParamStore = Map<string, tf.Tensor>;

const TF = tfOps as Ops<any>;

export function param<T>(P: Params<T>, name: string): T {
  const t = P.get(name);
  if (!t) throw new Error(`missing parameter ${name}`);
  return t;
}

/** x: [..., in] -> [..., out] */
export function linear(P: ParamStore, name: string, x: tf.Tensor): tf.Tensor;
export function linear<T>(P: Params<T>, name: string, x: NoInfer<T>, o: Ops<T>): T;
export function linear<T>(P: Params<T>, name: string, x: NoInfer<T>, o: Ops<T> = TF): T {
  const w = param(P, `${name}.weight`); // [in, out]
  const b = param(P, `${name}.bias`);
  const shape = o.shape(x);
  const x2 = shape.length === 2 ? x : o.reshape(x, [-1, shape[shape.length - 1]]);
  const y = o.add(o.matMul(x2, w), b);
  return shape.length === 2 ? y : o.reshape(y, [...shape.slice(0, -1), o.shape(w)[1]]);
}

/** 3x3 (or 1x1) conv, stride 1 "same", or stride 2 with PyTorch's symmetric padding 1. */
export function conv(P: ParamStore, name: string, x: tf.Tensor4D, stride?: number): tf.Tensor4D;
export function conv<T>(P: Params<T>, name: string, x: NoInfer<T>, stride: number, o: Ops<T>): T;
export function conv<T>(P: Params<T>, name: string, x: NoInfer<T>, stride = 1, o: Ops<T> = TF): T {
  const w = param(P, `${name}.weight`); // [k, k, Cin, Cout]
  const k = o.shape(w)[0];
  return o.conv2d(x, w, param(P, `${name}.bias`), stride, (k - 1) / 2);
}

/**
 * GroupNorm over [B,H,W,C] with G groups: statistics per (sample, group) over H, W and C/G.
 * Two-pass and exact: per-channel means over H*W (a reduction over one contiguous middle axis,
 * fast on wasm, unlike moments over axes [1,3]), averaged within each group; then the same for
 * the squared deviations from the group mean.
 */
export function groupNorm(P: ParamStore, name: string, x: tf.Tensor4D, groups: number, eps: number): tf.Tensor4D;
export function groupNorm<T>(P: Params<T>, name: string, x: NoInfer<T>, groups: number, eps: number, o: Ops<T>): T;
export function groupNorm<T>(P: Params<T>, name: string, x: NoInfer<T>, groups: number, eps: number, o: Ops<T> = TF): T {
  const gamma = param(P, `${name}.weight`), beta = param(P, `${name}.bias`);
  if (o.groupNorm) return o.groupNorm(x, gamma, beta, groups, eps);
  return groupNormParts(o, x, gamma, beta, groups, eps).y;
}

/** [B,C] -> [B,1,C], each channel holding the mean of its group's channels */
export function groupMean<T>(o: Ops<T>, perChannel: T, groups: number): T {
  const C = o.shape(perChannel)[1], cg = C / groups;
  return o.reshape(o.broadcastTo(o.mean(o.reshape(perChannel, [-1, groups, cg]), 2, true), [-1, groups, cg]), [-1, 1, C]);
}

/** groupNorm's computation, with the normalised x (xn [B,H,W,C]) and 1/std (rstd [B,1,C]) it goes through */
export function groupNormParts<T>(o: Ops<T>, x: T, gamma: T, beta: T, groups: number, eps: number): { y: T; xn: T; rstd: T } {
  const [, H, W, C] = o.shape(x);
  const xr = o.reshape(x, [-1, H * W, C]);
  const d = o.sub(xr, groupMean(o, o.mean(xr, 1), groups));
  const variance = groupMean(o, o.mean(o.square(d), 1), groups);
  const rstd = o.rsqrt(o.add(variance, eps));
  const xn = o.reshape(o.mul(d, rstd), [-1, H, W, C]);
  return { y: o.add(o.mul(xn, gamma), beta), xn, rstd };
}

export function silu(x: tf.Tensor): tf.Tensor;
export function silu<T>(x: NoInfer<T>, o: Ops<T>): T;
export function silu<T>(x: T, o: Ops<T> = TF): T {
  return o.silu ? o.silu(x) : o.mul(x, o.sigmoid(x));
}

/**
 * Sinusoidal features of (possibly fractional) timesteps t: [B] -> [B, dim]:
 * [sin(t f_0..f_{d/2-1}), cos(t f_0..)], f_i = exp(-ln(10000) i / (d/2)).
 */
export function timestepFeatures(t: tf.Tensor1D, dim: number): tf.Tensor2D;
export function timestepFeatures<T>(t: NoInfer<T>, dim: number, o: Ops<T>): T;
export function timestepFeatures<T>(t: T, dim: number, o: Ops<T> = TF): T {
  const half = dim / 2;
  const freqs = new Float32Array(half);
  for (let i = 0; i < half; i++) freqs[i] = Math.exp((-Math.log(10000) * i) / half);
  const args = o.mul(o.reshape(t, [-1, 1]), o.constant(freqs, [1, half])); // [B, half]
  return o.concat([o.sin(args), o.cos(args)], 1);
}

/**
 * ResBlock: h = conv1(silu(gn1(x))) + proj(silu(temb)); h = conv2(silu(gn2(h)));
 * out = h + shortcut(x) (1x1 conv when channels change). tembAct: [B, temb].
 */
export function resBlock(P: ParamStore, name: string, x: tf.Tensor4D, tembAct: tf.Tensor2D, groups: number, eps: number): tf.Tensor4D;
export function resBlock<T>(P: Params<T>, name: string, x: NoInfer<T>, tembAct: NoInfer<T>, groups: number, eps: number, o: Ops<T>): T;
export function resBlock<T>(P: Params<T>, name: string, x: NoInfer<T>, tembAct: NoInfer<T>, groups: number, eps: number, o: Ops<T> = TF): T {
  let h = conv(P, `${name}.conv1`, silu(groupNorm(P, `${name}.norm1`, x, groups, eps, o), o), 1, o);
  const tproj = linear(P, `${name}.time_emb_proj`, tembAct, o); // [B, Cout]
  h = o.add(h, o.reshape(tproj, [-1, 1, 1, o.shape(tproj)[1]]));
  h = conv(P, `${name}.conv2`, silu(groupNorm(P, `${name}.norm2`, h, groups, eps, o), o), 1, o);
  const skip = P.has(`${name}.conv_shortcut.weight`) ? conv(P, `${name}.conv_shortcut`, x, 1, o) : x;
  return o.add(h, skip);
}

/**
 * Self-attention over the N = H*W positions: GN -> q,k,v (1x1) -> softmax(q k^T / sqrt(d)) v ->
 * out projection -> residual. heads split the channels (d = C / heads).
 */
export function attention(P: ParamStore, name: string, x: tf.Tensor4D, heads: number, groups: number, eps: number): tf.Tensor4D;
export function attention<T>(P: Params<T>, name: string, x: NoInfer<T>, heads: number, groups: number, eps: number, o: Ops<T>): T;
export function attention<T>(P: Params<T>, name: string, x: NoInfer<T>, heads: number, groups: number, eps: number, o: Ops<T> = TF): T {
  const [, H, W, C] = o.shape(x);
  const N = H * W;
  const d = C / heads;
  const hn = o.reshape(groupNorm(P, `${name}.group_norm`, x, groups, eps, o), [-1, C]); // [B*N, C]
  const split = (t: T) => // [B*N, C] -> [B*heads, N, d]
    heads === 1 ? o.reshape(t, [-1, N, C]) : o.reshape(o.transpose(o.reshape(t, [-1, N, heads, d]), [0, 2, 1, 3]), [-1, N, d]);
  const q = split(linear(P, `${name}.to_q`, hn, o));
  const k = split(linear(P, `${name}.to_k`, hn, o));
  const v = split(linear(P, `${name}.to_v`, hn, o));
  const scores = o.mul(o.matMul(q, k, true), 1 / Math.sqrt(d)); // [B*heads, N, N]
  let out = o.matMul(o.softmax(scores), v); // [B*heads, N, d]
  if (heads > 1) out = o.transpose(o.reshape(out, [-1, heads, N, d]), [0, 2, 1, 3]); // [B, N, heads, d]
  const proj = o.reshape(linear(P, `${name}.to_out`, o.reshape(out, [-1, C]), o), [-1, H, W, C]);
  return o.add(x, proj);
}

/** Nearest-neighbour x2 upsampling then a 3x3 conv. */
export function upsample(P: ParamStore, name: string, x: tf.Tensor4D): tf.Tensor4D;
export function upsample<T>(P: Params<T>, name: string, x: NoInfer<T>, o: Ops<T>): T;
export function upsample<T>(P: Params<T>, name: string, x: NoInfer<T>, o: Ops<T> = TF): T {
  return conv(P, `${name}.conv`, o.resizeNearest2x(x), 1, o);
}
