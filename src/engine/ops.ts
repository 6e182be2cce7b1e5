/**
 * The handful of tensor operations the U-Net forward is written in. The layers (diffusion/layers.ts)
 * and the network (diffusion/unet.ts) are generic over them, so one description of the model
 *   - computes tfjs tensors (engine/tf-ops.ts: training, the tfjs engine, the reference), and
 *   - builds an ONNX graph (engine/onnx-ops.ts: `driftlab export`, the onnx engine).
 * Nothing else describes the network, so the exported graph cannot drift from the trained model.
 *
 * Conventions (both implementations): logical layout NHWC; conv weights [KH,KW,Cin,Cout], linear
 * weights [in,out] (the checkpoint layouts). In reshape targets -1 means "infer" (as in tfjs); the
 * generic code uses it only for the axis that holds the batch, which an ONNX graph knows only at
 * run time. shape() may report such an axis as negative (-k: k times the batch size).
 */
export interface Ops<T> {
  /** Static shape of x; a negative entry -k means k x batch (ONNX graphs only). */
  shape(x: T): number[];
  /** A float32 constant (row-major data). */
  constant(values: Float32Array, shape: number[]): T;

  /** x: [B,H,W,Cin], w: [KH,KW,Cin,Cout], b: [Cout] -> [B,H',W',Cout]; symmetric zero padding. */
  conv2d(x: T, w: T, b: T, stride: number, pad: number): T;
  /** [..., M, K] @ [..., K, N] (b: [..., N, K] when transposeB) -> [..., M, N] */
  matMul(a: T, b: T, transposeB?: boolean): T;
  /** element-wise with numpy-style broadcasting */
  add(a: T, b: T | number): T;
  sub(a: T, b: T): T;
  mul(a: T, b: T | number): T;
  sigmoid(x: T): T;
  sin(x: T): T;
  cos(x: T): T;
  square(x: T): T;
  /** 1 / sqrt(x) */
  rsqrt(x: T): T;

  reshape(x: T, shape: number[]): T;
  transpose(x: T, perm: number[]): T;
  concat(xs: T[], axis: number): T;
  /** x[..., begin:begin+size, ...] along one non-batch axis */
  slice(x: T, axis: number, begin: number, size: number): T;
  /** softmax over the last axis */
  softmax(x: T): T;
  mean(x: T, axis: number, keepDims?: boolean): T;
  /** broadcast to shape; -1 keeps that axis of x */
  broadcastTo(x: T, shape: number[]): T;
  /** nearest-neighbour upsampling [B,H,W,C] -> [B,2H,2W,C] (tfjs: alignCorners false) */
  resizeNearest2x(x: T): T;
  /**
   * Rows of an embedding table: table [K,E], labels [B] int -> [B,E]. Without labels every row
   * is the last one (the null class); batch is then the number of rows to make.
   */
  embedding(table: T, labels: T | undefined, batch: number): T;
  /**
   * Optional: GroupNorm as one op, x [B,H,W,C], gamma/beta [C] (diffusion/layers.ts groupNorm
   * composes it from the ops above when absent). The reverse-mode Tape implements it, with the
   * same forward and a closed-form VJP (engine/vjp.ts).
   */
  groupNorm?(x: T, gamma: T, beta: T, groups: number, eps: number): T;
  /**
   * Optional: SiLU x sigmoid(x) as one op (diffusion/layers.ts silu composes it when absent). The
   * Tape implements it, with the same forward and a fused VJP (engine/vjp.ts).
   */
  silu?(x: T): T;
}
