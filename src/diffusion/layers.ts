/**
 * Functional layers over a parameter store (NHWC throughout). Parameters are looked up by
 * diffusers-style names ("down_blocks.0.resnets.0.conv1.weight"); layouts are tfjs-native:
 * conv weights [KH,KW,Cin,Cout], linear weights [in,out].
 */
import * as tf from '@tensorflow/tfjs';

export type ParamStore = Map<string, tf.Tensor>;

export function param(P: ParamStore, name: string): tf.Tensor {
  const t = P.get(name);
  if (!t) throw new Error(`missing parameter ${name}`);
  return t;
}

/** x: [..., in] -> [..., out] */
export function linear(P: ParamStore, name: string, x: tf.Tensor): tf.Tensor {
  const w = param(P, `${name}.weight`) as tf.Tensor2D;
  const b = param(P, `${name}.bias`);
  const shape = x.shape;
  const x2 = shape.length === 2 ? (x as tf.Tensor2D) : x.reshape([-1, shape[shape.length - 1]]) as tf.Tensor2D;
  const y = tf.add(tf.matMul(x2, w), b);
  return shape.length === 2 ? y : y.reshape([...shape.slice(0, -1), w.shape[1]]);
}

/** 3x3 (or 1x1) conv, stride 1 "same", or stride 2 with PyTorch's symmetric padding 1. */
export function conv(P: ParamStore, name: string, x: tf.Tensor4D, stride = 1): tf.Tensor4D {
  const w = param(P, `${name}.weight`) as tf.Tensor4D;
  const b = param(P, `${name}.bias`) as tf.Tensor1D;
  const k = w.shape[0];
  const p = (k - 1) / 2;
  const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [p, p], [p, p], [0, 0]];
  return tf.add(tf.conv2d(x, w, stride, pad), b);
}

/**
 * GroupNorm over [B,H,W,C] with G groups: statistics per (sample, group) over H, W and C/G.
 * Two-pass and exact: per-channel means over H*W (a reduction over one contiguous middle axis,
 * fast on wasm, unlike moments over axes [1,3]), averaged within each group; then the same for
 * the squared deviations from the group mean.
 */
export function groupNorm(P: ParamStore, name: string, x: tf.Tensor4D, groups: number, eps: number): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  const cg = C / groups;
  const groupMean = (perChannel: tf.Tensor) => // [B,C] -> [B,1,C], each channel holding its group's mean
    tf.broadcastTo(tf.mean(perChannel.reshape([B, groups, cg]), 2, true), [B, groups, cg]).reshape([B, 1, C]);
  const xr = x.reshape([B, H * W, C]);
  const d = tf.sub(xr, groupMean(tf.mean(xr, 1)));
  const variance = groupMean(tf.mean(tf.square(d), 1));
  const xn = tf.mul(d, tf.rsqrt(tf.add(variance, eps))).reshape([B, H, W, C]);
  return tf.add(tf.mul(xn, param(P, `${name}.weight`)), param(P, `${name}.bias`));
}

export const silu = (x: tf.Tensor): tf.Tensor => tf.mul(x, tf.sigmoid(x));

/**
 * Sinusoidal features of (possibly fractional) timesteps t: [B] -> [B, dim]:
 * [sin(t f_0..f_{d/2-1}), cos(t f_0..)], f_i = exp(-ln(10000) i / (d/2)).
 */
export function timestepFeatures(t: tf.Tensor1D, dim: number): tf.Tensor2D {
  const half = dim / 2;
  const freqs = new Float32Array(half);
  for (let i = 0; i < half; i++) freqs[i] = Math.exp((-Math.log(10000) * i) / half);
  const args = tf.mul(t.reshape([-1, 1]), tf.tensor2d(freqs, [1, half]));
  return tf.concat([tf.sin(args), tf.cos(args)], 1) as tf.Tensor2D;
}

/**
 * ResBlock: h = conv1(silu(gn1(x))) + proj(silu(temb)); h = conv2(silu(gn2(h)));
 * out = h + shortcut(x) (1x1 conv when channels change).
 */
export function resBlock(P: ParamStore, name: string, x: tf.Tensor4D, tembAct: tf.Tensor2D, groups: number, eps: number): tf.Tensor4D {
  let h = conv(P, `${name}.conv1`, silu(groupNorm(P, `${name}.norm1`, x, groups, eps)) as tf.Tensor4D);
  const tproj = linear(P, `${name}.time_emb_proj`, tembAct); // [B, Cout]
  h = tf.add(h, tproj.reshape([-1, 1, 1, tproj.shape[1] as number]));
  h = conv(P, `${name}.conv2`, silu(groupNorm(P, `${name}.norm2`, h, groups, eps)) as tf.Tensor4D);
  const skip = P.has(`${name}.conv_shortcut.weight`) ? conv(P, `${name}.conv_shortcut`, x) : x;
  return tf.add(h, skip);
}

/**
 * Self-attention over the H*W positions: GN -> q,k,v (1x1) -> softmax(q k^T / sqrt(d)) v -> out
 * projection -> residual. heads split the channels.
 */
export function attention(P: ParamStore, name: string, x: tf.Tensor4D, heads: number, groups: number, eps: number): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  const N = H * W;
  const d = C / heads;
  const hn = groupNorm(P, `${name}.group_norm`, x, groups, eps).reshape([B * N, C]);
  const split = (t: tf.Tensor) =>
    heads === 1 ? t.reshape([B, N, C]) : t.reshape([B, N, heads, d]).transpose([0, 2, 1, 3]).reshape([B * heads, N, d]);
  const q = split(linear(P, `${name}.to_q`, hn)) as tf.Tensor3D;
  const k = split(linear(P, `${name}.to_k`, hn)) as tf.Tensor3D;
  const v = split(linear(P, `${name}.to_v`, hn)) as tf.Tensor3D;
  const scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(d)); // [B*heads, N, N]
  let o: tf.Tensor = tf.matMul(tf.softmax(scores), v); // [B*heads, N, d]
  if (heads > 1) o = o.reshape([B, heads, N, d]).transpose([0, 2, 1, 3]);
  const out = linear(P, `${name}.to_out`, o.reshape([B * N, C])).reshape([B, H, W, C]);
  return tf.add(x, out);
}

/** Nearest-neighbour x2 upsampling then a 3x3 conv. */
export function upsample(P: ParamStore, name: string, x: tf.Tensor4D): tf.Tensor4D {
  const [, H, W] = x.shape;
  return conv(P, `${name}.conv`, tf.image.resizeNearestNeighbor(x, [2 * H, 2 * W]));
}
