/**
 * U-Net -> ONNX: run the model's own forward (diffusion/unet.ts) over the graph-building ops, so
 * the exported graph is the trained network by construction, then serialise it.
 *
 *   inputs   x       [batch,H,W,Cin] float32 (NHWC, like every tensor in driftlab)
 *            t       [batch] float32 timesteps (fractional allowed)
 *            labels  [batch] int64 class ids, numClasses = null class (class-conditional models only)
 *   output   out     [batch,H,W,Cout] float32: the raw network output (epsilon, v or x0)
 */
import { UNetConfig } from '../diffusion/config.js';
import { flatLayout, splitFlat } from '../diffusion/model.js';
import { modelApply, modelParamSpecs } from '../diffusion/arch.js';
import { DriftlabError } from '../util/errors.js';
import { encodeModel } from './onnx-proto.js';
import { GVal, OnnxGraphBuilder } from './onnx-ops.js';

export const ONNX_OPSET = 17;
export const ONNX_IR_VERSION = 8;
export const ONNX_FORMAT = 'driftlab-unet-onnx-1';

export interface ExportOptions {
  /** extra metadata_props (e.g. the checkpoint's schedule and objective) */
  metadata?: Record<string, string>;
  producerVersion?: string;
}

export interface Exported {
  bytes: Uint8Array;
  nodes: number;
  initializers: number;
}

/** params: name -> values (checkpoint layouts), or the flat layout of UNetModel.getFlat(). */
export function exportOnnx(config: UNetConfig, params: Map<string, Float32Array> | Float32Array, opts: ExportOptions = {}): Exported {
  const specs = modelParamSpecs(config);
  const layout = flatLayout(specs);
  if (params instanceof Float32Array && params.length !== layout.size) {
    throw new DriftlabError(`cannot export: ${params.length} parameter values, the config implies ${layout.size}`);
  }
  const named = params instanceof Float32Array ? splitFlat(layout, params) : params;
  const g = new OnnxGraphBuilder();
  const P = new Map<string, GVal>();
  for (const s of specs) {
    const v = named.get(s.name);
    if (!v || v.length !== s.shape.reduce((a, b) => a * b, 1)) throw new DriftlabError(`cannot export: parameter ${s.name} is missing or has the wrong size`);
    P.set(s.name, g.param(s.name, s.shape, v));
  }
  const S = config.sampleSize;
  const x = g.input('x', [-1, S, S, config.inChannels]);
  const t = g.input('t', [-1]);
  const labels = config.numClasses > 0 ? g.input('labels', [-1], 'int64') : undefined;
  g.output(modelApply(g, P, config, x, t, labels), 'out');
  const bytes = encodeModel({
    irVersion: ONNX_IR_VERSION, opsetImports: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'driftlab', producerVersion: opts.producerVersion ?? '', docString: 'driftlab image U-Net (NHWC); out = raw network output',
    graph: g.graph('driftlab_unet'),
    metadata: { 'driftlab.format': ONNX_FORMAT, 'driftlab.model': JSON.stringify(config), ...opts.metadata },
  });
  return { bytes, nodes: g.nodes.length, initializers: g.initializers.length };
}
