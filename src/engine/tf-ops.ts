/**
 * Ops over tfjs tensors: what training, the tfjs engine and the tests run. Each method is the
 * very tfjs call the layers made before they became generic, so numerics and gradients (and the
 * wasm fast paths of kernels/wasm-fast.ts that these calls hit) are unchanged.
 */
import * as tf from '@tensorflow/tfjs';
import type { Ops } from './ops.js';

type Pad4 = [[number, number], [number, number], [number, number], [number, number]];

export const tfOps: Ops<tf.Tensor> = {
  shape: (x) => x.shape,
  constant: (values, shape) => tf.tensor(values, shape, 'float32'),

  conv2d(x, w, b, stride, pad) {
    const p: Pad4 = [[0, 0], [pad, pad], [pad, pad], [0, 0]];
    return tf.add(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, p), b);
  },
  matMul: (a, b, transposeB = false) => tf.matMul(a, b, false, transposeB),
  add: (a, b) => tf.add(a, b),
  sub: (a, b) => tf.sub(a, b),
  mul: (a, b) => tf.mul(a, b),
  sigmoid: (x) => tf.sigmoid(x),
  sin: (x) => tf.sin(x),
  cos: (x) => tf.cos(x),
  square: (x) => tf.square(x),
  rsqrt: (x) => tf.rsqrt(x),

  reshape: (x, shape) => x.reshape(shape),
  transpose: (x, perm) => x.transpose(perm),
  concat: (xs, axis) => tf.concat(xs, axis),
  slice(x, axis, begin, size) {
    const b = x.shape.map((_, i) => (i === axis ? begin : 0));
    const s = x.shape.map((_, i) => (i === axis ? size : -1));
    return tf.slice(x, b, s);
  },
  softmax: (x) => tf.softmax(x),
  mean: (x, axis, keepDims = false) => tf.mean(x, axis, keepDims),
  broadcastTo: (x, shape) => tf.broadcastTo(x, shape.map((d, i) => (d === -1 ? x.shape[i] : d))),
  resizeNearest2x(x) {
    const [, H, W] = x.shape;
    return tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [2 * H, 2 * W]);
  },
  embedding(table, labels, batch) {
    const K = table.shape[0];
    const lab = labels ?? tf.fill([batch], K - 1, 'int32');
    // one-hot @ table instead of gather: wasm has no UnsortedSegmentSum for gather's gradient
    const onehot = tf.oneHot(lab.toInt() as tf.Tensor1D, K).toFloat() as tf.Tensor2D;
    return tf.matMul(onehot, table as tf.Tensor2D);
  },
};
