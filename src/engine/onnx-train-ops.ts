/**
 * The ONNX graph builder plus the primitives VJP rules need (engine/vjp.ts GradOps), in standard
 * opset-17 operators, keeping the builder's layout bookkeeping (onnx-ops.ts: values carry a
 * permutation, Convs work NCHW):
 *
 *   sum              ReduceSum (axes as an input, opset 13+)
 *   conv2dGradInput  ConvTranspose with the forward's OIHW weight ([Cout,Cin,KH,KW] is exactly
 *                    ConvTranspose's [C_in, C_out, kH, kW]); output_padding recovers the input size
 *   conv2dGradWeight Conv with batch and channel axes swapped: x as [Cin,B,H,W] convolved with dy
 *                    as [Cout,B,Ho,Wo] (dilation = stride) gives [Cin,Cout,KH',KW']; a Slice keeps
 *                    the first KH x KW (KH' > KH for stride 2)
 *   oneHot           OneHot
 *
 * raw() emits any node on identity-layout operands (the optimizer in onnx-train.ts uses it).
 */
import { AttrType, AttributeProto, DataType, f32Bytes } from './onnx-proto.js';
import { GVal, OnnxGraphBuilder, unsupported } from './onnx-ops.js';
import type { GradOps } from './vjp.js';

const iota = (n: number) => [...Array(n).keys()];
const ints = (name: string, v: number[]): AttributeProto => ({ name, type: AttrType.INTS, ints: v });
const int = (name: string, i: number): AttributeProto => ({ name, type: AttrType.INT, i });
const NCHW = [0, 3, 1, 2];

export class OnnxTrainBuilder extends OnnxGraphBuilder implements GradOps<GVal> {
  /** Training graphs have one static batch size: inputs must have no symbolic dimension. */
  override input(name: string, shape: number[], dtype: 'float32' | 'int64' = 'float32'): GVal {
    if (shape.some((d) => !(d >= 0))) unsupported('input', `${name} with a symbolic shape [${shape}] in a training graph`);
    return super.input(name, shape, dtype);
  }

  sum(x: GVal, axes: number[], keepDims = false): GVal {
    const y = this.node('ReduceSum', [this.as(x, x.perm), this.i64(axes.map((a) => x.perm.indexOf(a)))], [int('keepdims', keepDims ? 1 : 0)]);
    if (keepDims) return this.val(y, x.shape.map((d, i) => (axes.includes(i) ? 1 : d)), x.perm);
    const drop = (a: number) => a - axes.filter((b) => b < a).length;
    return this.val(y, x.shape.filter((_, i) => !axes.includes(i)), x.perm.filter((a) => !axes.includes(a)).map(drop));
  }

  conv2dGradInput(dy: GVal, w: GVal, xShape: number[], stride: number, pad: number): GVal {
    const [kh, kw] = w.shape;
    const [, Ho, Wo] = dy.shape;
    const extra = (n: number, o: number, k: number) => n - (stride * (o - 1) + k - 2 * pad);
    const outPad = [extra(xShape[1], Ho, kh), extra(xShape[2], Wo, kw)];
    if (outPad.some((p) => p < 0 || p >= stride)) unsupported('conv2dGradInput', `for input [${xShape}] from [${dy.shape}]`);
    const y = this.node('ConvTranspose', [this.as(dy, NCHW), this.as(w, [3, 2, 0, 1])], [
      ints('kernel_shape', [kh, kw]), ints('pads', [pad, pad, pad, pad]), ints('strides', [stride, stride]), ints('output_padding', outPad),
    ]);
    return this.val(y, xShape, NCHW);
  }

  conv2dGradWeight(x: GVal, dy: GVal, wShape: number[], stride: number, pad: number): GVal {
    const [kh, kw] = wShape;
    const [, H, W] = x.shape;
    const [, Ho, Wo] = dy.shape;
    const CBHW = [3, 0, 1, 2];
    let y = this.node('Conv', [this.as(x, CBHW), this.as(dy, CBHW)], [
      ints('kernel_shape', [Ho, Wo]), ints('pads', [pad, pad, pad, pad]), ints('dilations', [stride, stride]), ints('strides', [1, 1]),
    ]); // [Cin, Cout, KH', KW']
    const full = [H + 2 * pad - stride * (Ho - 1), W + 2 * pad - stride * (Wo - 1)];
    if (full[0] < kh || full[1] < kw) unsupported('conv2dGradWeight', `for weights [${wShape}] from [${x.shape}]`);
    if (full[0] !== kh || full[1] !== kw) y = this.node('Slice', [y, this.i64([0, 0]), this.i64([kh, kw]), this.i64([2, 3])]);
    return this.val(y, wShape, [2, 3, 0, 1]);
  }

  oneHot(labels: GVal, depth: number): GVal {
    if (labels.dtype !== 'int64') unsupported('oneHot', `of ${labels.dtype} labels`);
    const values = this.initializer('onehot_values', [2], f32Bytes(Float32Array.of(0, 1)), DataType.FLOAT);
    const y = this.node('OneHot', [labels.id, this.i64([depth]), values], [int('axis', -1)]);
    return this.val(y, [labels.shape[0], depth], [0, 1]);
  }

  /** op on identity-layout operands -> a value of the given logical shape (identity layout) */
  raw(op: string, inputs: GVal[], shape: number[], attrs: AttributeProto[] = []): GVal {
    return this.val(this.node(op, inputs.map((v) => this.as(v, iota(v.shape.length))), attrs), shape, iota(shape.length));
  }

  /** a float32 scalar constant (shape []) */
  scalarConst(v: number): GVal {
    return this.constant(Float32Array.of(v), []);
  }
}
