/**
 * The conv gradients of the training graph as ONNX nodes, one class between the inference
 * builder (onnx-ops.ts) and the training builder (onnx-train-ops.ts), in standard opset-17
 * operators plus onnxruntime's blocked-layout kernels:
 *
 *   conv2dGradInput  ConvTranspose with the forward's OIHW weight, or (stride 1) a Conv on the
 *                    transposed, flipped weights
 *   conv2dGradWeight Conv with batch and channel axes swapped, or im2col (Pad + KH*KW Slices +
 *                    Concat, NHWC or NCHW) and one GEMM / a batched MatMul, or one product per
 *                    tap (the Slices without the Concat), or contiguous row shifts of the
 *                    flattened padded grid
 *                    (which one per conv: defaultConvGrad below, measured)
 *   conv2d           the forward Conv on the blocked-layout (NCHWc) kernels where they fit
 */
import { AttrType, AttributeProto, NCHWC_DOMAIN } from './onnx-proto.js';
import { GVal, NCHW, OnnxGraphBuilder, int, ints, unsupported } from './onnx-ops.js';

/** one conv gradient to emit: shapes are logical (NHWC, weights [KH,KW,Cin,Cout]) */
export interface ConvCase {
  kind: 'dx' | 'dw'; xShape: number[]; wShape: number[]; dyShape: number[]; stride: number; pad: number;
  /** the builder's blocked-kernel channel block (OnnxTrainBuilder.nchwcBlock; 0 = none) */
  nchwcBlock?: number;
}
export const DX_FORMULATIONS = ['conv-transpose', 'flipped-conv'] as const;
export const DW_FORMULATIONS = ['swapped-conv', 'im2col-nhwc', 'im2col-nchw', 'taps-nchw', 'taps-cbhw', 'swapped-nchwc', 'taps-flat'] as const;
export type DxFormulation = (typeof DX_FORMULATIONS)[number];
export type DwFormulation = (typeof DW_FORMULATIONS)[number];
export type ConvGradPolicy = (c: ConvCase) => DxFormulation | DwFormulation;

/**
 * does formulation f apply to case c (flipped-conv: stride 1 only; swapped-nchwc: the blocked
 * kernels present, with block `nchwcBlock`, dividing the batch and the output channels)
 */
export function convGradApplies(f: DxFormulation | DwFormulation, c: ConvCase, nchwcBlock = 0): boolean {
  if (c.kind === 'dx') return f === 'conv-transpose' || (f === 'flipped-conv' && c.stride === 1 && c.pad <= c.wShape[0] - 1 && c.pad <= c.wShape[1] - 1);
  if (f === 'swapped-nchwc') return nchwcBlock > 0 && c.xShape[0] % nchwcBlock === 0 && c.wShape[3] % nchwcBlock === 0;
  if (f === 'taps-flat') return c.stride === 1;
  return (DW_FORMULATIONS as readonly string[]).includes(f);
}

/** the formulations of the first training graph (before bench/bench-conv-grad.ts) */
export const todaysConvGrad: ConvGradPolicy = (c) => (c.kind === 'dx' ? 'conv-transpose' : 'swapped-conv');

/**
 * The fastest formulation per conv, from `node dist/bench/bench-conv-grad.js` on every conv of
 * the reference network at batch 64, 1 intra-op thread (docs/BENCHMARKS.md, "Conv gradient
 * formulations"; CPU-time ratios to today's, over three sittings on a shared 2-core Xeon):
 *   dw 1x1                          im2col-nchw (no im2col: one batched MatMul)  0.06-0.25
 *   dw Cin = 1 (conv_in)            im2col-nchw                                  0.58-0.61
 *   dw 3x3 stride 1                 taps-cbhw (conv_out, Cout = 1: 0.67)         0.53-0.76
 *   dw stride 2 to Ho*Wo < 196      im2col-nhwc (14x14 -> 7x7)                   0.78-0.92
 *   dw stride 2 otherwise           swapped-conv (28 -> 14: the others 0.91-1.45)
 *   dx stride 1, 1x1 or Cout <= Cin flipped-conv                                 0.24-0.98
 *                                   (32->32 at 28x28: 0.67 in one sitting, 1.14 in another)
 *   dx otherwise (stride 2; 32->64) conv-transpose (flipped 1.13-1.22 for 32->64 at 14x14)
 *   dw 3x3 stride 1, Cin >= 3 Cout  taps-flat (96->32 at 28x28: 0.33 against taps-cbhw's 0.40;
 *                                   conv_out 32->1: 0.41 against 0.73; with Cout >= Cin/2 it loses:
 *                                   0.56-0.88 against 0.41-0.74, session 10)
 * With the blocked kernels (nchwcBlock, bench-conv-grad --nchwc, session 10) the flipped Conv runs
 * on them wherever the block divides both channel counts: 0.46-0.76 of ConvTranspose for every 3x3
 * stride-1 case, 32->64 at 14x14 included (0.70), so it is taken there too.
 */
export const defaultConvGrad: ConvGradPolicy = (c) => {
  const [kh, kw, cin, cout] = c.wShape;
  const pointwise = kh === 1 && kw === 1 && c.stride === 1;
  const b = c.nchwcBlock ?? 0;
  const blocked = b > 0 && cin % b === 0 && cout % b === 0;
  if (c.kind === 'dx') return convGradApplies('flipped-conv', c) && (pointwise || cout <= cin || blocked) ? 'flipped-conv' : 'conv-transpose';
  if (pointwise || cin === 1) return 'im2col-nchw';
  if (c.stride === 1) return cin >= 3 * cout ? 'taps-flat' : 'taps-cbhw';
  return c.dyShape[1] * c.dyShape[2] < 196 ? 'im2col-nhwc' : 'swapped-conv';
};

export class ConvGradBuilder extends OnnxGraphBuilder {
  /**
   * Which formulation each conv gradient is emitted as (bench/bench-conv-grad.ts measures them on
   * every conv of the reference network and sets a policy for one whole graph).
   */
  convGrad: ConvGradPolicy = defaultConvGrad;

  /**
   * Channel block of onnxruntime's blocked-layout CPU kernels (engine/onnx-engine.ts
   * nchwcBlockSize), 0 = not used. When set, every Conv on non-constant weights whose input and
   * output channels are multiples of the block (the forward's, and the input gradient's flipped
   * Convs) runs as com.microsoft.nchwc ReorderInput -> Conv -> ReorderOutput, with the weights
   * reordered in graph (one Reshape-Transpose-Reshape) to the blocked filter layout
   * [O/B, I/B, KH, KW, Bi, Bo]. onnxruntime applies these kernels itself only to Convs whose
   * weights are initializers (its NchwcTransformer), which a training graph's are not; measured
   * faster per conv, reorders included, 1.3-2x (docs/BENCHMARKS.md). The graph is then built for
   * this CPU's block: it is not a file to ship.
   */
  nchwcBlock = 0;
  /** did the graph emit com.microsoft.nchwc nodes (its opset imports must then name the domain) */
  usedNchwc = false;

  private nchwcFits(cin: number, cout: number, w: GVal): boolean {
    const b = this.nchwcBlock;
    return b > 0 && !w.data && cin % b === 0 && cout % b === 0;
  }

  /**
   * Filter of a Conv with `o` output and `i` input channels in the blocked layout, from a tensor
   * whose identity layout is [KH, KW, I, O] (forward weights) or [KH, KW, O, I] (`swap`: the input
   * gradient's, whose output channels are the forward's input channels).
   */
  private nchwcFilter(w: string, kh: number, kw: number, o: number, i: number, swap: boolean): string {
    const b = this.nchwcBlock;
    const six = swap ? [kh, kw, o / b, b, i / b, b] : [kh, kw, i / b, b, o / b, b];
    const perm = swap ? [2, 4, 0, 1, 5, 3] : [4, 2, 0, 1, 3, 5]; // -> [O/B, I/B, KH, KW, Bi, Bo]
    const t = this.node('Transpose', [this.node('Reshape', [w, this.i64(six)])], [ints('perm', perm)]);
    return this.node('Reshape', [t, this.i64([o, i, kh, kw])]);
  }

  /** y = conv(x NCHW, blocked filter, bias) through the blocked kernels -> NCHW name */
  private nchwcConv(xNchw: string, filter: string, bias: string | null, cout: number, attrs: AttributeProto[]): string {
    this.usedNchwc = true;
    const xr = this.node('ReorderInput', [xNchw], [], undefined, NCHWC_DOMAIN);
    const yr = this.node('Conv', bias ? [xr, filter, bias] : [xr, filter], attrs, undefined, NCHWC_DOMAIN);
    return this.node('ReorderOutput', [yr], [int('channels', cout)], undefined, NCHWC_DOMAIN);
  }

  override conv2d(x: GVal, w: GVal, b: GVal, stride: number, pad: number): GVal {
    const [kh, kw, cin, cout] = w.shape;
    if (x.shape.length !== 4 || w.shape.length !== 4 || !this.nchwcFits(cin, cout, w) || !Number.isInteger(pad) || !Number.isInteger(stride) || stride < 1) {
      return super.conv2d(x, w, b, stride, pad);
    }
    const [N, H, W] = x.shape;
    const filter = this.nchwcFilter(this.as(w, [0, 1, 2, 3]), kh, kw, cout, cin, false);
    const y = this.nchwcConv(this.as(x, NCHW), filter, this.as(b, [0]), cout, [
      ints('kernel_shape', [kh, kw]), ints('pads', [pad, pad, pad, pad]), ints('strides', [stride, stride]),
    ]);
    const out = (n: number, k: number) => Math.floor((n + 2 * pad - k) / stride) + 1;
    return this.val(y, [N, out(H, kh), out(W, kw), cout], NCHW);
  }

  conv2dGradInput(dy: GVal, w: GVal, xShape: number[], stride: number, pad: number): GVal {
    const c: ConvCase = { kind: 'dx', xShape, wShape: w.shape, dyShape: dy.shape, stride, pad, nchwcBlock: this.nchwcBlock };
    const f = this.convGrad(c) as DxFormulation;
    return this.within(`conv_dx_${f}`, () => (f === 'flipped-conv' ? this.dxFlippedConv(dy, w, c) : this.dxConvTranspose(dy, w, c)));
  }

  conv2dGradWeight(x: GVal, dy: GVal, wShape: number[], stride: number, pad: number): GVal {
    const c: ConvCase = { kind: 'dw', xShape: x.shape, wShape, dyShape: dy.shape, stride, pad, nchwcBlock: this.nchwcBlock };
    const f = this.convGrad(c) as DwFormulation;
    return this.within(`conv_dw_${f}`, () => {
      switch (f) {
        case 'im2col-nhwc': return this.dwIm2colNhwc(x, dy, c);
        case 'im2col-nchw': return this.dwIm2colNchw(x, dy, c);
        case 'taps-nchw': return this.dwTaps(x, dy, c, NCHW);
        case 'taps-cbhw': return this.dwTaps(x, dy, c, [3, 0, 1, 2]);
        case 'swapped-nchwc': return this.dwSwappedNchwc(x, dy, c);
        case 'taps-flat': return this.dwTapsFlat(x, dy, c);
        default: return this.dwSwappedConv(x, dy, c);
      }
    });
  }

  /** ConvTranspose with the forward's OIHW weight; output_padding recovers the input size */
  private dxConvTranspose(dy: GVal, w: GVal, { xShape, stride, pad }: ConvCase): GVal {
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

  /**
   * Stride 1 only: a plain Conv of dy with the weights transposed to [Cin,Cout,KH,KW] and flipped
   * in both spatial axes (Slice with step -1), padding k-1-p: the correlation that ConvTranspose
   * computes, run by the forward Conv kernel (im2col + GEMM) instead of GEMM + col2im.
   */
  private dxFlippedConv(dy: GVal, w: GVal, { xShape, stride, pad }: ConvCase): GVal {
    const [kh, kw] = w.shape;
    if (stride !== 1 || pad > kh - 1 || pad > kw - 1) unsupported('conv2dGradInput', `as a flipped conv with stride ${stride}, pad ${pad}, kernel ${kh}x${kw}`);
    const [ph, pw] = [kh - 1 - pad, kw - 1 - pad];
    const attrs = [ints('kernel_shape', [kh, kw]), ints('pads', [ph, pw, ph, pw]), ints('strides', [1, 1])];
    const flip = (v: string, axes: number[]) => (kh > 1 || kw > 1 ? this.node('Slice', [v, this.i64([kh - 1, kw - 1]), this.i64([-(kh + 1), -(kw + 1)]), this.i64(axes), this.i64([-1, -1])]) : v);
    const [, , cin, cout] = w.shape;
    if (this.nchwcFits(cout, cin, w)) {
      // the same correlation on the blocked kernels: flip [KH, KW, Cin, Cout] in its spatial axes
      const filter = this.nchwcFilter(flip(this.as(w, [0, 1, 2, 3]), [0, 1]), kh, kw, cin, cout, true);
      return this.val(this.nchwcConv(this.as(dy, NCHW), filter, null, cin, attrs), xShape, NCHW);
    }
    const wt = flip(this.as(w, [2, 3, 0, 1]), [2, 3]); // [Cin, Cout, KH, KW], flipped
    const y = this.node('Conv', [this.as(dy, NCHW), wt], attrs);
    return this.val(y, xShape, NCHW);
  }

  /**
   * Conv with batch and channel axes swapped: x as [Cin,B,H,W] convolved with dy as
   * [Cout,B,Ho,Wo] (dilation = stride) gives [Cin,Cout,KH',KW']; a Slice keeps the first KH x KW
   * (KH' > KH for stride 2). Its GEMMs have N = KH'*KW' (9) and run once per input channel.
   */
  private dwSwappedConv(x: GVal, dy: GVal, { wShape, stride, pad }: ConvCase): GVal {
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

  /**
   * Stride 1: one GEMM per tap with contiguous shifts instead of strided windows. In CBHW, padded
   * x flattened to [Cin, L] (L = B*Hp*Wp) and dy placed at the top-left of the same padded grid
   * (zeros elsewhere) flattened to [Cout, L]: tap (i, j) is the sum over q of x[ci, q + off]
   * dy[co, q], off = i*Wp + j, since every position q that holds a dy value has q + off inside
   * its own sample's padded image. The shift is a Slice of whole rows (a contiguous copy, not
   * the H x W windows of taps-cbhw), taken on the smaller of x and dy (dy shifted the other way
   * when Cout < Cin); the GEMMs' K grows from B*Ho*Wo to about B*Hp*Wp.
   */
  private dwTapsFlat(x: GVal, dy: GVal, c: ConvCase): GVal {
    const [kh, kw, cin, cout] = c.wShape;
    const [B, H, W] = x.shape;
    const [, Ho, Wo] = dy.shape;
    const p = c.pad, Hp = H + 2 * p, Wp = W + 2 * p;
    if (c.stride !== 1 || Ho !== Hp - kh + 1 || Wo !== Wp - kw + 1) unsupported('conv2dGradWeight', `as flat taps with stride ${c.stride} for x [${x.shape}], dy [${dy.shape}]`);
    const CBHW = [3, 0, 1, 2];
    const L = B * Hp * Wp, offMax = (kh - 1) * Wp + (kw - 1);
    const pad4 = (v: string, top: number, bottom: number, left: number, right: number) =>
      (top || bottom || left || right ? this.node('Pad', [v, this.i64([0, 0, top, left, 0, 0, bottom, right])], [{ name: 'mode', type: AttrType.STRING, s: 'constant' }]) : v);
    const xf = this.node('Reshape', [pad4(this.as(x, CBHW), p, p, p, p), this.i64([cin, L])]);
    const df = this.node('Reshape', [pad4(this.as(dy, CBHW), 0, kh - 1, 0, kw - 1), this.i64([cout, L])]);
    const slice = (v: string, from: number, to: number) => this.node('Slice', [v, this.i64([from]), this.i64([to]), this.i64([1])]);
    const parts: string[] = [];
    if (cin <= cout) {
      const d = slice(df, 0, L - offMax);
      for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) {
        const off = i * Wp + j;
        parts.push(this.node('Gemm', [slice(xf, off, off + L - offMax), d], [int('transB', 1)]));
      }
    } else {
      // x[p] dy[p - off] summed over p: dy padded in front by offMax, its window starting at offMax - off
      const dpad = this.node('Pad', [df, this.i64([0, offMax, 0, 0])], [{ name: 'mode', type: AttrType.STRING, s: 'constant' }]);
      for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) {
        const off = i * Wp + j;
        parts.push(this.node('Gemm', [xf, slice(dpad, offMax - off, offMax - off + L)], [int('transB', 1)]));
      }
    }
    const all = parts.length > 1 ? this.node('Concat', parts, [int('axis', 0)]) : parts[0];
    return this.val(this.node('Reshape', [all, this.i64(c.wShape)]), c.wShape, [0, 1, 2, 3]);
  }

  /**
   * The swapped Conv on the blocked kernels: x as [Cin, B, H, W] (the batch is the channel axis,
   * reordered to blocks of B), dy reordered straight from NCHW to the blocked filter layout of a
   * Conv with Cout outputs over B inputs and an Ho x Wo kernel. Needs the block to divide the
   * batch and Cout (convGradApplies).
   */
  private dwSwappedNchwc(x: GVal, dy: GVal, c: ConvCase): GVal {
    const [kh, kw, , cout] = c.wShape;
    const [N, H, W] = x.shape;
    const [, Ho, Wo] = dy.shape;
    const b = this.nchwcBlock;
    if (!convGradApplies('swapped-nchwc', c, b)) unsupported('conv2dGradWeight', `on the blocked kernels (block ${b}) for x [${x.shape}], weights [${c.wShape}]`);
    // dy [N, Cout, Ho, Wo] -> [N/b, bi, Cout/b, bo, Ho, Wo] -> [Cout/b, N/b, Ho, Wo, bi, bo]
    const six = this.node('Reshape', [this.as(dy, NCHW), this.i64([N / b, b, cout / b, b, Ho, Wo])]);
    const filter = this.node('Reshape', [this.node('Transpose', [six], [ints('perm', [2, 0, 4, 5, 1, 3])]), this.i64([cout, N, Ho, Wo])]);
    let y = this.nchwcConv(this.as(x, [3, 0, 1, 2]), filter, null, cout, [
      ints('kernel_shape', [Ho, Wo]), ints('pads', [c.pad, c.pad, c.pad, c.pad]), ints('dilations', [c.stride, c.stride]), ints('strides', [1, 1]),
    ]); // [Cin, Cout, KH', KW']
    const full = [H + 2 * c.pad - c.stride * (Ho - 1), W + 2 * c.pad - c.stride * (Wo - 1)];
    if (full[0] < kh || full[1] < kw) unsupported('conv2dGradWeight', `for weights [${c.wShape}] from [${x.shape}]`);
    if (full[0] !== kh || full[1] !== kw) y = this.node('Slice', [y, this.i64([0, 0]), this.i64([kh, kw]), this.i64([2, 3])]);
    return this.val(y, c.wShape, [2, 3, 0, 1]);
  }

  /**
   * The KH*KW shifted (and strided) windows of zero-padded x along spatial axes hw of layout
   * `perm`, concatenated along its channel axis (tap-major: (kh*KW + kw)*Cin + ci).
   */
  private im2col(x: GVal, perm: number[], c: ConvCase): string {
    const taps = this.taps(x, perm, c);
    return taps.length > 1 ? this.node('Concat', taps, [int('axis', perm.indexOf(3))]) : taps[0];
  }

  /** the KH*KW windows of zero-padded x (layout perm) that im2col concatenates, in tap order */
  private taps(x: GVal, perm: number[], { wShape, dyShape, stride, pad }: ConvCase): string[] {
    const [kh, kw] = wShape;
    const [, Ho, Wo] = dyShape;
    const [hAx, wAx] = [perm.indexOf(1), perm.indexOf(2)];
    let xp = this.as(x, perm);
    if (pad > 0) {
      const pads = new Array(8).fill(0);
      for (const a of [hAx, wAx]) { pads[a] = pad; pads[4 + a] = pad; }
      xp = this.node('Pad', [xp, this.i64(pads)], [{ name: 'mode', type: AttrType.STRING, s: 'constant' }]);
    }
    if (kh === 1 && kw === 1 && stride === 1) return [xp];
    const taps: string[] = [];
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) {
      taps.push(this.node('Slice', [xp, this.i64([i, j]), this.i64([i + stride * (Ho - 1) + 1, j + stride * (Wo - 1) + 1]), this.i64([hAx, wAx]), this.i64([stride, stride])]));
    }
    return taps;
  }

  /**
   * One product per tap, no im2col matrix: each window of padded x times dy, the [Cin,Cout]
   * results concatenated in tap order. NCHW: batched MatMuls [B,Cin,HoWo] x [B,HoWo,Cout] and a
   * sum over the batch; CBHW (x and dy transposed once): one GEMM per tap with K = B*Ho*Wo.
   */
  private dwTaps(x: GVal, dy: GVal, c: ConvCase, perm: number[]): GVal {
    const [, , cin, cout] = c.wShape;
    const [B, Ho, Wo] = c.dyShape;
    const cbhw = perm[0] === 3;
    const d = cbhw
      ? this.node('Reshape', [this.as(dy, perm), this.i64([cout, B * Ho * Wo])])
      : this.node('Transpose', [this.node('Reshape', [this.as(dy, perm), this.i64([B, cout, Ho * Wo])])], [ints('perm', [0, 2, 1])]);
    const parts = this.taps(x, perm, c).map((t) => cbhw
      ? this.node('Gemm', [this.node('Reshape', [t, this.i64([cin, B * Ho * Wo])]), d], [int('transB', 1)])
      : this.node('MatMul', [this.node('Reshape', [t, this.i64([B, cin, Ho * Wo])]), d]));
    const all = parts.length > 1 ? this.node('Concat', parts, [int('axis', cbhw ? 0 : 1)]) : parts[0];
    const y = cbhw ? all : this.node('ReduceSum', [all, this.i64([0])], [int('keepdims', 0)]);
    return this.val(this.node('Reshape', [y, this.i64(c.wShape)]), c.wShape, [0, 1, 2, 3]);
  }

  /**
   * im2col in NHWC (x and dy transposed there once) and one GEMM with K = B*Ho*Wo:
   * cols [B*Ho*Wo, KH*KW*Cin]^T dy [B*Ho*Wo, Cout] = dw [KH*KW*Cin, Cout], the checkpoint layout.
   */
  private dwIm2colNhwc(x: GVal, dy: GVal, c: ConvCase): GVal {
    const [kh, kw, cin, cout] = c.wShape;
    const [B, Ho, Wo] = c.dyShape;
    const NHWC = [0, 1, 2, 3];
    const cols = this.node('Reshape', [this.im2col(x, NHWC, c), this.i64([B * Ho * Wo, kh * kw * cin])]);
    const d = this.node('Reshape', [this.as(dy, NHWC), this.i64([B * Ho * Wo, cout])]);
    const y = this.node('Gemm', [cols, d], [int('transA', 1)]);
    return this.val(this.node('Reshape', [y, this.i64(c.wShape)]), c.wShape, NHWC);
  }

  /**
   * im2col in NCHW (no transposes of the activations) and a batched MatMul with K = Ho*Wo, then
   * a sum over the batch: cols [B, KH*KW*Cin, Ho*Wo] dy^T [B, Ho*Wo, Cout] -> [B, KH*KW*Cin, Cout].
   */
  private dwIm2colNchw(x: GVal, dy: GVal, c: ConvCase): GVal {
    const [kh, kw, cin, cout] = c.wShape;
    const [B, Ho, Wo] = c.dyShape;
    const cols = this.node('Reshape', [this.im2col(x, NCHW, c), this.i64([B, kh * kw * cin, Ho * Wo])]);
    const d = this.node('Transpose', [this.node('Reshape', [this.as(dy, NCHW), this.i64([B, cout, Ho * Wo])])], [ints('perm', [0, 2, 1])]);
    const y = this.node('ReduceSum', [this.node('MatMul', [cols, d]), this.i64([0])], [int('keepdims', 0)]);
    return this.val(this.node('Reshape', [y, this.i64(c.wShape)]), c.wShape, [0, 1, 2, 3]);
  }
}
