/**
 * A U-Net bound to tfjs variables, with a flat float32 view of all parameters (the layout the
 * optimizer, EMA, gradient averaging across workers and checkpoints share).
 */
import * as tf from '@tensorflow/tfjs';
import { UNetConfig } from './config.js';
import { tfOps } from '../engine/tf-ops.js';
import { modelApply, modelParamSpecs } from './arch.js';
import { ParamSpec, countParams, initParamValues } from './unet.js';

export interface FlatLayout {
  specs: ParamSpec[];
  offsets: number[];
  size: number;
}

export function flatLayout(specs: ParamSpec[]): FlatLayout {
  const offsets: number[] = [];
  let o = 0;
  for (const s of specs) {
    offsets.push(o);
    o += s.shape.reduce((a, b) => a * b, 1);
  }
  return { specs, offsets, size: o };
}

export class UNetModel {
  readonly specs: ParamSpec[];
  readonly layout: FlatLayout;
  readonly vars = new Map<string, tf.Variable>();
  private static nextId = 0;

  constructor(readonly config: UNetConfig, init: Map<string, Float32Array> | number = 0) {
    this.specs = modelParamSpecs(config);
    this.layout = flatLayout(this.specs);
    const values = typeof init === 'number' ? initParamValues(this.specs, init) : init;
    for (const s of this.specs) {
      const v = values.get(s.name);
      if (!v) throw new Error(`no initial value for ${s.name}`);
      this.vars.set(s.name, tf.variable(tf.tensor(v, s.shape, 'float32'), true, `p${UNetModel.nextId++}/${s.name}`));
    }
  }

  get numParams(): number {
    return countParams(this.specs);
  }

  /**
   * x: [N,H,W,C], t: [N], labels: [N] -> [N,H,W,Cout]. For a video model N = B*F (frames folded
   * into the batch, frame index fastest) and `frames` is F (default: the configured window).
   */
  forward(x: tf.Tensor4D, t: tf.Tensor1D, labels?: tf.Tensor1D, frames?: number): tf.Tensor4D {
    return modelApply(tfOps, this.vars as Map<string, tf.Tensor>, this.config, x, t, labels, frames) as tf.Tensor4D;
  }

  /** Copy all parameters into one flat float32 array (layout order). */
  getFlat(out = new Float32Array(this.layout.size)): Float32Array {
    this.specs.forEach((s, i) => out.set(this.vars.get(s.name)!.dataSync() as Float32Array, this.layout.offsets[i]));
    return out;
  }

  setFlat(flat: Float32Array): void {
    this.specs.forEach((s, i) => {
      const n = s.shape.reduce((a, b) => a * b, 1);
      const o = this.layout.offsets[i];
      tf.tidy(() => this.vars.get(s.name)!.assign(tf.tensor(flat.subarray(o, o + n), s.shape, 'float32')));
    });
  }

  /** Parameters as name -> Float32Array (copies). */
  getNamed(): Map<string, Float32Array> {
    return splitFlat(this.layout, this.getFlat());
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}

export function splitFlat(layout: FlatLayout, flat: Float32Array): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  layout.specs.forEach((s, i) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    m.set(s.name, flat.slice(layout.offsets[i], layout.offsets[i] + n));
  });
  return m;
}

export function joinFlat(layout: FlatLayout, named: Map<string, Float32Array>): Float32Array {
  const flat = new Float32Array(layout.size);
  layout.specs.forEach((s, i) => flat.set(named.get(s.name)!, layout.offsets[i]));
  return flat;
}
