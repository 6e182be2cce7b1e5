/** A tiny video checkpoint trained in-process (mmnist-tiny, a few steps) and its pipeline, once per file. */
import * as path from 'node:path';
import { ensureWasm } from './backend.js';
import { Pipeline, loadPipeline } from '../../src/diffusion/pipeline.js';
import { getVideoPreset } from '../../src/video/presets.js';
import { trainVideo } from '../../src/video/train-video.js';

export function tinyVideoPipeline(dir: string, steps = 3): { ckpt: string; pipeline: () => Promise<Pipeline> } {
  const ckpt = path.join(dir, 'video');
  let pipe: Pipeline | null = null;
  return {
    ckpt,
    async pipeline() {
      if (pipe) return pipe;
      await ensureWasm();
      const p = getVideoPreset('mmnist-tiny');
      p.train.steps = steps;
      p.train.contextDropout = 0.1; // history guidance needs a model that saw blank contexts
      p.train.joint = 0.5; // reconstruction guidance, one that denoised its context
      await trainVideo({ preset: p, out: ckpt, workers: 1, backend: 'wasm', quiet: true });
      pipe = await loadPipeline(ckpt, 'ema', { engine: 'tfjs' });
      return pipe;
    },
  };
}
