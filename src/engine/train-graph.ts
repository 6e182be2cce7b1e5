/**
 * The training step as one ONNX graph: the model's own forward (diffusion/arch.ts modelApply)
 * over a Tape on the ONNX builder, the weighted MSE of grad.ts lossAndGrad, its reverse pass
 * (engine/vjp.ts rules) and, optionally, diffusion/optim.ts in graph: global grad-norm clipping,
 * AdamW (decoupled weight decay, bias correction) and the EMA.
 *
 * Inputs (N = rows: images, or clips x frames for video; static)
 *   x [N,S,S,Cin] noised input, t [N] float timesteps, labels [N] int64 (conditional models),
 *   target [N,S,S,Cout], w [N] per-sample loss weights (lossWeights x batch weights)
 *   p:NAME for every parameter (checkpoint layout)
 *   optimizer graphs also: m:NAME, v:NAME, ema:NAME and the per-step scalars (shape [])
 *   max_norm (Infinity = no clipping), decay = 1 - lr wd, step_size = lr / (1 - b1^t),
 *   sqrt_bc2 = sqrt(1 - b2^t), ema_d, ema_c = 1 - ema_d
 * Outputs
 *   loss [];  gradient graphs: g:NAME;  input-gradient graphs (wrt 'input'): g:x [N,S,S,Cin];  optimizer graphs: grad_norm [] (before clipping) and
 *   new_p:NAME, new_m:NAME, new_v:NAME, new_ema:NAME
 *
 * buildOptimizerGraph: the optimizer part alone (data-parallel training, engine/onnx-train-dp.ts:
 * the gradient is summed over workers on the host), inputs p:/g:/m:/v:/ema:NAME and the step
 * scalars, outputs grad_norm and new_*; the same adamInGraph as the whole step.
 */
import type { UNetConfig } from '../diffusion/config.js';
import { modelApply, modelParamSpecs } from '../diffusion/arch.js';
import type { AdamWConfig } from '../diffusion/optim.js';
import type { Ops } from './ops.js';
import { ONNX_IR_VERSION, ONNX_OPSET } from './export.js';
import { NCHWC_DOMAIN, encodeModel } from './onnx-proto.js';
import type { GVal } from './onnx-ops.js';
import type { ConvGradPolicy } from './onnx-conv-grad.js';
import { OnnxTrainBuilder } from './onnx-train-ops.js';
import { Tape, Var } from './tape.js';

export const STEP_SCALARS = ['max_norm', 'decay', 'step_size', 'sqrt_bc2', 'ema_d', 'ema_c'] as const;

/** mean_n w_n mean_d (out - target)^2, out/target [N,...], w [N] -> [] (grad.ts lossAndGrad) */
export function weightedMse<T>(o: Ops<T>, out: T, target: T, w: T): T {
  const [N, ...rest] = o.shape(out);
  const D = rest.reduce((a, b) => a * b, 1);
  const perSample = o.mean(o.reshape(o.square(o.sub(out, target)), [N, D]), 1); // [N]
  return o.mean(o.mul(perSample, w), 0);
}

export interface TrainGraphOptions {
  /** rows per step (images, or clips x frames) */
  rows: number;
  /** video: frames per clip (default the configured window) */
  frames?: number;
  /** include clipping, AdamW and EMA (else the graph outputs the gradients) */
  adam?: AdamWConfig;
  /**
   * what the gradient is taken with respect to: the parameters (training; default) or the input x
   * (an input-gradient graph: outputs loss and g:x, the parameters are plain inputs; in-loop
   * guidance, drift/correctors/reconstruction-guidance.ts). Not with adam.
   */
  wrt?: 'params' | 'input';
  /** conv gradient formulations (default: the measured choice, onnx-train-ops.ts defaultConvGrad) */
  convGrad?: ConvGradPolicy;
  /**
   * run Convs on the weights through onnxruntime's blocked-layout kernels with this channel block
   * (onnx-engine.ts nchwcBlockSize on the machine that runs the graph; 0 / absent = plain Convs)
   */
  nchwcBlock?: number;
}

export interface TrainGraph {
  bytes: Uint8Array;
  names: string[];
  nodes: number;
  /** ops recorded on the tape (forward ops that need a gradient) */
  taped: number;
}

export function buildTrainGraph(config: UNetConfig, o: TrainGraphOptions): TrainGraph {
  const specs = modelParamSpecs(config);
  const g = new OnnxTrainBuilder();
  if (o.convGrad) g.convGrad = o.convGrad;
  g.nchwcBlock = o.nchwcBlock ?? 0;
  const tape = new Tape(g);
  const N = o.rows, S = config.sampleSize;
  const wrtInput = o.wrt === 'input';
  if (wrtInput && o.adam) throw new Error('buildTrainGraph: an input-gradient graph has no optimizer');
  const P = new Map<string, Var<GVal>>();
  for (const s of specs) P.set(s.name, tape.leaf(g.input(`p:${s.name}`, s.shape), !wrtInput));
  const x = tape.leaf(g.input('x', [N, S, S, config.inChannels]), wrtInput);
  const t = tape.leaf(g.input('t', [N]), false);
  const labels = config.numClasses > 0 ? tape.leaf(g.input('labels', [N], 'int64'), false) : undefined;
  const target = tape.leaf(g.input('target', [N, S, S, config.outChannels]), false);
  const w = tape.leaf(g.input('w', [N]), false);
  const out = g.within('fwd', () => modelApply(tape, P, config, x, t, labels, o.frames));
  const loss = g.within('loss', () => weightedMse(tape, out, target, w));
  const grads = g.within('bwd', () => tape.gradients(loss, wrtInput ? [x] : specs.map((s) => P.get(s.name)!)));
  g.output(loss.v, 'loss');
  if (wrtInput) g.output(grads[0], 'g:x');
  else if (!o.adam) specs.forEach((s, i) => g.output(grads[i], `g:${s.name}`));
  else g.within('opt', () => adamInGraph(g, specs.map((s, k) => ({ name: s.name, shape: s.shape, p: P.get(s.name)!.v, g: grads[k] })), o.adam!));
  const bytes = encodeModel({
    irVersion: ONNX_IR_VERSION, opsetImports: [{ domain: '', version: ONNX_OPSET }, ...(g.usedNchwc ? [{ domain: NCHWC_DOMAIN, version: 1 }] : [])],
    producerName: 'driftlab', producerVersion: '', docString: `driftlab training ${o.adam ? 'step' : wrtInput ? 'input-gradient' : 'gradient'} graph, ${N} rows`,
    graph: g.graph(o.adam ? 'driftlab_train_step' : wrtInput ? 'driftlab_input_grad' : 'driftlab_train_grad'), metadata: { 'driftlab.model': JSON.stringify(config) },
  });
  return { bytes, names: specs.map((s) => s.name), nodes: g.nodes.length, taped: tape.size };
}

/** Clipping, AdamW and EMA on a given gradient g:NAME (no model, no batch: any rows). */
export function buildOptimizerGraph(config: UNetConfig, adam: AdamWConfig): TrainGraph {
  const specs = modelParamSpecs(config);
  const g = new OnnxTrainBuilder();
  const slots = specs.map((s) => ({ name: s.name, shape: s.shape, p: g.input(`p:${s.name}`, s.shape), g: g.input(`g:${s.name}`, s.shape) }));
  g.within('opt', () => adamInGraph(g, slots, adam));
  const bytes = encodeModel({
    irVersion: ONNX_IR_VERSION, opsetImports: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'driftlab', producerVersion: '', docString: 'driftlab optimizer graph (clip, AdamW, EMA)',
    graph: g.graph('driftlab_optimizer'), metadata: { 'driftlab.model': JSON.stringify(config) },
  });
  return { bytes, names: specs.map((s) => s.name), nodes: g.nodes.length, taped: 0 };
}

interface ParamSlot { name: string; shape: number[]; p: GVal; g: GVal }

/** optim.ts in graph: clipGradNorm, AdamW.step, emaUpdate (same formulas, same order). */
function adamInGraph(g: OnnxTrainBuilder, slots: ParamSlot[], cfg: AdamWConfig): void {
  const sc = Object.fromEntries(STEP_SCALARS.map((k) => [k, g.input(k, [])])) as Record<(typeof STEP_SCALARS)[number], GVal>;
  const c = (v: number) => g.scalarConst(v);
  const bin = (op: string, a: GVal, b: GVal) => g.raw(op, [a, b], a.shape.length >= b.shape.length ? a.shape : b.shape);
  let ss: GVal | null = null;
  for (const s of slots) {
    const part = g.raw('ReduceSumSquare', [s.g], [], [{ name: 'keepdims', type: 2, i: 0 }]);
    ss = ss ? bin('Add', ss, part) : part;
  }
  const norm = g.raw('Sqrt', [ss!], []);
  g.output(norm, 'grad_norm');
  // clipGradNorm: scale maxNorm / (norm + 1e-6) only when norm > maxNorm
  const clipped = bin('Div', sc.max_norm, bin('Add', norm, c(1e-6)));
  const scale = g.raw('Where', [g.raw('Greater', [norm, sc.max_norm], []), clipped, c(1)], []);
  for (const s of slots) {
    const m = g.input(`m:${s.name}`, s.shape), v = g.input(`v:${s.name}`, s.shape), ema = g.input(`ema:${s.name}`, s.shape);
    const gi = bin('Mul', s.g, scale);
    const m2 = bin('Add', bin('Mul', m, c(cfg.beta1)), bin('Mul', gi, c(1 - cfg.beta1)));
    const v2 = bin('Add', bin('Mul', v, c(cfg.beta2)), bin('Mul', bin('Mul', gi, gi), c(1 - cfg.beta2)));
    const denom = bin('Add', bin('Div', g.raw('Sqrt', [v2], s.shape), sc.sqrt_bc2), c(cfg.eps));
    const p2 = bin('Sub', bin('Mul', s.p, sc.decay), bin('Div', bin('Mul', sc.step_size, m2), denom));
    const ema2 = bin('Add', bin('Mul', ema, sc.ema_d), bin('Mul', p2, sc.ema_c));
    g.output(p2, `new_p:${s.name}`); g.output(m2, `new_m:${s.name}`); g.output(v2, `new_v:${s.name}`); g.output(ema2, `new_ema:${s.name}`);
  }
}
