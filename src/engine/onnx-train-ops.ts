/**
 * The ONNX graph builder plus the primitives VJP rules need (engine/vjp.ts GradOps), in standard
 * opset-17 operators, keeping the builder's layout bookkeeping (onnx-ops.ts: values carry a
 * permutation, Convs work NCHW):
 *
 *   sum              ReduceSum (axes as an input, opset 13+)
 *   conv2dGradInput  } onnx-conv-grad.ts (the formulations, the policy that picks one per conv,
 *   conv2dGradWeight }   the blocked-layout Convs)
 *   oneHot           OneHot
 *   sumPool2x2       AveragePool times 4
 *
 * raw() emits any node on identity-layout operands (the optimizer in onnx-train.ts uses it).
 */
import { AttrType, AttributeProto, DataType, f32Bytes } from './onnx-proto.js';
import { GVal, NCHW, int, ints, unsupported } from './onnx-ops.js';
import { ConvGradBuilder } from './onnx-conv-grad.js';
import type { GradOps } from './vjp.js';

const iota = (n: number) => [...Array(n).keys()];

export class OnnxTrainBuilder extends ConvGradBuilder implements GradOps<GVal> {
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

  oneHot(labels: GVal, depth: number): GVal {
    if (labels.dtype !== 'int64') unsupported('oneHot', `of ${labels.dtype} labels`);
    const values = this.initializer('onehot_values', [2], f32Bytes(Float32Array.of(0, 1)), DataType.FLOAT);
    const y = this.node('OneHot', [labels.id, this.i64([depth]), values], [int('axis', -1)]);
    return this.val(y, [labels.shape[0], depth], [0, 1]);
  }

  /**
   * AveragePool 2x2 / stride 2 in NCHW, times 4: the block sum exactly (scaling by 4 is exact in
   * binary floating point). The reshape-to-[B,C,H,2,W,2] + ReduceSum over the two interleaved
   * size-2 axes it replaces was onnxruntime's slowest reduction in the step profile.
   */
  sumPool2x2(x: GVal): GVal {
    const [B, H2, W2, C] = x.shape;
    if (x.shape.length !== 4 || H2 % 2 || W2 % 2) unsupported('sumPool2x2', `on [${x.shape}]`);
    const y = this.node('AveragePool', [this.as(x, NCHW)], [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])]);
    return this.mul(this.val(y, [B, H2 / 2, W2 / 2, C], NCHW), 4);
  }

  /** Mark v as a graph output in the layout perm (physical axis i = logical axis perm[i]). */
  outputPhysical(v: GVal, perm: number[], name: string): void {
    this.node('Identity', [this.as(v, perm)], [], name);
    this.outputs.push({ name, elemType: DataType.FLOAT, dims: perm.map((a) => v.shape[a]) });
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
