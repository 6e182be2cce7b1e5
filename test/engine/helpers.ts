/** Shared by the engine tests: random (non-identity) parameters and onnxruntime that must load. */
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import type { UNetConfig } from '../../src/diffusion/config.js';
import { UNetModel } from '../../src/diffusion/model.js';
import { initParamValues } from '../../src/diffusion/unet.js';
import { modelParamSpecs } from '../../src/diffusion/arch.js';
import { loadOrt } from '../../src/engine/onnx-engine.js';
import { Rng } from '../../src/util/rng.js';
import { getPreset } from '../../src/diffusion/presets.js';
import { getVideoPreset } from '../../src/video/presets.js';

/**
 * PyTorch-like init, then noise on everything that starts constant (GN weights/biases, the
 * zero-init attention out-projections), so every layer matters in the comparison.
 */
export function randomParams(cfg: UNetConfig, seed: number): Map<string, Float32Array> {
  const specs = modelParamSpecs(cfg); // image or video
  const vals = initParamValues(specs, seed);
  const rng = new Rng(seed + 1000);
  for (const s of specs) {
    const v = vals.get(s.name)!;
    if (s.init !== 'uniform' || s.name.includes('to_out')) {
      for (let i = 0; i < v.length; i++) v[i] += (s.init === 'ones' ? 0.2 : 0.5 / Math.sqrt(s.fanIn)) * rng.normal();
    }
  }
  return vals;
}

/**
 * The engine tests exist to check onnxruntime: if it cannot load here, they fail, loudly. Call it
 * inside each test, not in test.before: uvu 0.5 swallows errors thrown by hooks (the file then
 * reports 0 / N and still exits 0).
 */
export async function requireOrt(): Promise<void> {
  const s = await loadOrt();
  assert.ok(s.ort, `onnxruntime-node must load for these tests (CI installs it with npm ci): ${s.error}`);
}

/** Memoised async setup, awaited at the top of every test (see requireOrt). */
export function once(setup: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | null = null;
  return () => (p ??= setup());
}

/** tfjs reference forward: x [B,S,S,C] -> out values */
export function tfjsForward(cfg: UNetConfig, vals: Map<string, Float32Array>, x: Float32Array, t: Float32Array, labels?: Int32Array): Float32Array {
  const m = new UNetModel(cfg, vals);
  try {
    const S = cfg.sampleSize, B = t.length;
    return tf.tidy(() => m.forward(tf.tensor4d(x, [B, S, S, cfg.inChannels]), tf.tensor1d(t), labels && tf.tensor1d(labels, 'int32')).dataSync() as Float32Array);
  } finally {
    m.dispose();
  }
}

export function maxAbs(v: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
  return m;
}

/** mnist-tiny for the engine-loop tests: `steps` steps of 4 images, a checkpoint every `every` */
export function tinyImagePreset(steps: number, every = 1000) {
  const p = getPreset('mnist-tiny');
  Object.assign(p.train, { steps, checkpointEvery: every, seed: 5, batchSize: 4, lrWarmup: 10 });
  return p;
}

/** mmnist-tiny for the engine-loop tests: `steps` steps of 2 clips, a checkpoint every `every` */
export function tinyVideoPreset(steps: number, every = 10) {
  const p = getVideoPreset('mmnist-tiny');
  Object.assign(p.train, { steps, checkpointEvery: every, seed: 4, batchSize: 2 });
  return p;
}
