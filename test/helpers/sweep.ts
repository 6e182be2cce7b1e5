/** The tiniest drift arm a sweep test can run, and the 1-step video checkpoint it reads. */
import * as path from 'node:path';
import { ensureWasm } from './backend.js';
import { getVideoPreset } from '../../src/video/presets.js';
import { trainVideo } from '../../src/video/train-video.js';

/**
 * 1-step mmnist-tiny model, 4 frames, 1 rollout, 1 denoising step, small references, no MP4.
 * Name the correctors (in the options or the grid): drift's default fits kalman and controller.
 */
export const TINY_DRIFT = {
  ckpt: 'video', horizon: 4, rollouts: 1, steps: 1, 'ref-frames': 8, 'ref-clips': 2, 'video-frames': 4, mp4: false,
  'fvd-horizons': '0', 'report-frames': '2', 'frechet-bin': 2, engine: 'tfjs', backend: 'wasm',
};

/** Train DIR/video (mmnist-tiny, one step): the checkpoint TINY_DRIFT's relative "ckpt" names. */
export async function tinyCheckpoint(dir: string): Promise<void> {
  await ensureWasm();
  const p = getVideoPreset('mmnist-tiny');
  p.train.steps = 1;
  await trainVideo({ preset: p, out: path.join(dir, 'video'), workers: 1, backend: 'wasm', quiet: true });
}
