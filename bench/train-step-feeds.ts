/**
 * The feeds of one onnx training step of the reference network (bench/ab-train-step.ts,
 * bench/bench-conv-grad.ts): seeded random images, timesteps, targets, unit weights, the step's
 * scalars, small random parameters and zero Adam moments / EMA.
 */
import { SPEC_UNET } from '../src/diffusion/config.js';
import { modelParamSpecs } from '../src/diffusion/arch.js';
import type { Ort } from '../src/engine/onnx-engine.js';
import { STEP_SCALARS } from '../src/engine/train-graph.js';
import { Rng } from '../src/util/rng.js';

export function referenceStepFeeds(ort: Ort, B: number, scalar: (name: string) => number) {
  type Tensor = InstanceType<Ort['Tensor']>;
  const rng = new Rng(0);
  const S = SPEC_UNET.sampleSize;
  const feeds: Record<string, Tensor> = {
    x: new ort.Tensor('float32', rng.normals(B * S * S), [B, S, S, 1]),
    t: new ort.Tensor('float32', Float32Array.from({ length: B }, () => rng.int(1000)), [B]),
    target: new ort.Tensor('float32', rng.normals(B * S * S), [B, S, S, 1]),
    w: new ort.Tensor('float32', new Float32Array(B).fill(1), [B]),
  };
  for (const k of STEP_SCALARS) feeds[k] = new ort.Tensor('float32', Float32Array.of(scalar(k)), []);
  for (const s of modelParamSpecs(SPEC_UNET)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    feeds[`p:${s.name}`] = new ort.Tensor('float32', Float32Array.from(rng.normals(n), (v) => v * 0.05), s.shape);
    for (const slot of ['m', 'v', 'ema']) feeds[`${slot}:${s.name}`] = new ort.Tensor('float32', new Float32Array(n), s.shape);
  }
  return feeds;
}
