/** driftlab sample-video: continue Moving-MNIST clips from K context frames; write beside the truth. */
import type { CommandModule } from 'yargs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend, BackendName } from '../backend.js';
import { loadPipeline } from '../diffusion/pipeline.js';
import { SAMPLERS } from '../diffusion/samplers.js';
import { VIDEO_ETA, checkEta } from '../video/sample-clip.js';
import { ENGINE_CHOICES } from '../engine/select.js';
import { writeFileAtomic } from '../io/atomic.js';
import { encodeNpy } from '../io/npy.js';
import { MovingMnist } from '../../datasets/moving-mnist/index.js';
import { loadClips } from '../../datasets/moving-mnist/load.js';
import { clipWindow, poolFrame } from '../video/clips.js';
import { continueClips } from '../video/sample-clip.js';
import { toU8 } from '../video/frames8.js';
import { frameMetrics } from '../eval/frames.js';
import { writeFilmstrip, writeGif, writeMp4 } from '../video/writers.js';
import { DriftlabError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { positiveInt } from './common.js';


/** Frames [T, N*S, 2*S + 1]: each clip a row, truth on the left, generated on the right. */
export function sideBySide(truth: Float32Array, gen: Float32Array, N: number, F: number, S: number): { frames: Float32Array; H: number; W: number } {
  const H = N * S, W = 2 * S + 1;
  const out = new Float32Array(F * H * W).fill(0.5);
  for (let f = 0; f < F; f++) for (let n = 0; n < N; n++) for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) {
    const src = ((n * F + f) * S + y) * S + x, row = (f * H + n * S + y) * W;
    out[row + x] = truth[src];
    out[row + S + 1 + x] = gen[src];
  }
  return { frames: out, H, W };
}

export const sampleVideoCommand: CommandModule<any, any> = {
  command: 'sample-video',
  describe: 'continue clips: K context frames from Moving-MNIST (or a .npy), the next F-K frames generated, beside the ground truth',
  builder: (y) => y
    .option('ckpt', { type: 'string', demandOption: true, describe: 'video checkpoint (driftlab train-video)' })
    .option('out', { type: 'string', demandOption: true, describe: 'output folder (must not exist or be empty)' })
    .option('clips', { type: 'number', default: 4, describe: 'number of clips' })
    .option('context', { type: 'number', describe: 'context frames K (default: the model\'s training K; 0 = unconditional)' })
    .option('source', { type: 'string', default: 'moving-mnist', describe: "'moving-mnist' (generated, test digits, --seed) or a .npy of uint8 [N,T,H,W]" })
    .option('sampler', { choices: SAMPLERS, default: 'ddim' })
    .option('steps', { type: 'number', default: 50 })
    .option('eta', { type: 'number', default: VIDEO_ETA, describe: 'DDIM eta: 0 deterministic, 1 DDPM-like noise (the video default: it tracks longer, docs/EXPERIMENTS.md "Sampler noise")' })
    .option('engine', { choices: ENGINE_CHOICES, default: 'auto', describe: 'forward engine' })
    .option('threads', { type: 'number', describe: 'onnx intra-op threads (default: all cores)' })
    .option('fps', { type: 'number', default: 4, describe: 'frames per second of the GIF/MP4' })
    .option('mp4', { type: 'boolean', default: false, describe: 'also write an MP4 (needs ffmpeg: ffmpeg-static, FFMPEG_PATH or PATH)' }),
  handler: async (a) => {
    const N = positiveInt('clips', a.clips), steps = positiveInt('steps', a.steps), eta = checkEta(a.eta);
    if (fs.existsSync(a.out) && fs.readdirSync(a.out).length > 0) throw new DriftlabError(`${a.out} is not empty; choose a new --out folder`);
    await initBackend(a.backend as BackendName);
    const p = await loadPipeline(a.ckpt, 'ema', { engine: a.engine, threads: a.threads });
    try {
      const c = p.config.model;
      if (!c.video) throw new DriftlabError(`${a.ckpt} is an image checkpoint; sample-video needs one from 'driftlab train-video'`);
      process.stderr.write(`driftlab: ${p.engine.line}\n`);
      const F = c.video.frames, S = c.sampleSize;
      const K = a.context === undefined ? c.video.contextFrames : Number(a.context);
      if (!Number.isInteger(K) || K < 0 || K >= F) throw new DriftlabError(`--context must be an integer in 0..${F - 1} for this ${F}-frame model, got ${a.context}`);
      const truth = new Float32Array(N * F * S * S); // [-1,1]
      if (a.source === 'moving-mnist') {
        const data = (p.config.training as any)?.data;
        if (!data) throw new DriftlabError(`${a.ckpt} does not record its Moving-MNIST settings; pass --source FILE.npy`);
        const mm = new MovingMnist({ ...data, split: 'test' }, a.seed);
        for (let n = 0; n < N; n++) truth.set(clipWindow(mm, data.pool, n, F), n * F * S * S);
      } else {
        const clips = await loadClips(a.source);
        if (clips.n < N || clips.t < F) throw new DriftlabError(`${a.source} has ${clips.n} clips of ${clips.t} frames; need ${N} of at least ${F}`);
        if (clips.h % S !== 0) throw new DriftlabError(`${a.source} frames are ${clips.h}px; the model takes ${S}px (a divisor is needed for pooling)`);
        for (let n = 0; n < N; n++) for (let f = 0; f < F; f++) {
          poolFrame(clips.frames.subarray((n * clips.t + f) * clips.h * clips.w, (n * clips.t + f + 1) * clips.h * clips.w), clips.h, clips.h / S, truth, (n * F + f) * S * S);
        }
      }
      const context = new Float32Array(N * K * S * S);
      for (let n = 0; n < N; n++) context.set(truth.subarray(n * F * S * S, (n * F + K) * S * S), n * K * S * S);
      const t0 = performance.now();
      const gen = await continueClips(p.net, p.schedule, p.config.objective.prediction, context, N, K, F, S, {
        sampler: a.sampler, steps, eta, clipX0: true, rng: new Rng(a.seed).fork('sample-video'),
      });
      const seconds = (performance.now() - t0) / 1000;
      const full = truth.slice(); // context frames as given, then the generated ones
      for (let n = 0; n < N; n++) full.set(gen.subarray(n * (F - K) * S * S, (n + 1) * (F - K) * S * S), (n * F + K) * S * S);
      fs.mkdirSync(a.out, { recursive: true });
      const shape = [N, F, S, S];
      await writeFileAtomic(path.join(a.out, 'truth.npy'), encodeNpy({ dtype: 'uint8', shape, data: toU8(truth), fortranOrder: false }));
      await writeFileAtomic(path.join(a.out, 'generated.npy'), encodeNpy({ dtype: 'uint8', shape, data: toU8(full), fortranOrder: false }));
      const to01 = (v: Float32Array) => Float32Array.from(v, (x) => Math.max(0, Math.min(1, (x + 1) / 2)));
      const m = frameMetrics({ data: to01(full), n: N, t: F, h: S, w: S }, { data: to01(truth), n: N, t: F, h: S, w: S });
      const run = {
        checkpoint: path.resolve(a.ckpt), clips: N, frames: F, context: K, sampler: a.sampler, steps, eta, seed: a.seed,
        source: a.source, engine: p.engine.line, seconds, perFrame: { mse: m.mse, ssim: m.ssim },
        note: 'frames 0..K-1 are the given context; metrics against the ground-truth continuation, pixel range [0,1]',
      };
      await writeFileAtomic(path.join(a.out, 'run.json'), JSON.stringify(run, null, 2) + '\n');
      // pictures: a filmstrip (truth over generated per clip) and a GIF/MP4 of truth | generated side by side
      const perClip = (v: Float32Array) => Array.from({ length: N }, (_, n) => to01(v.subarray(n * F * S * S, (n + 1) * F * S * S)));
      await writeFilmstrip(path.join(a.out, 'filmstrip.png'), { truth: perClip(truth), generated: perClip(full), H: S, W: S, contextFrames: K, scale: 2 });
      const side = sideBySide(to01(truth), to01(full), N, F, S);
      await writeGif(path.join(a.out, 'clips.gif'), side.frames, F, side.H, side.W, { fps: a.fps, scale: 2 });
      const files = ['truth.npy', 'generated.npy', 'run.json', 'filmstrip.png', 'clips.gif'];
      if (a.mp4) {
        await writeMp4(path.join(a.out, 'clips.mp4'), side.frames, F, side.H, side.W, { fps: a.fps, scale: 4 });
        files.push('clips.mp4');
      }
      process.stderr.write(`wrote ${files.join(', ')}\n`);
      const fmt = (v: number[]) => v.slice(K).map((x) => x.toFixed(4)).join(' ');
      process.stdout.write(`${N} clips: ${K} context + ${F - K} generated frames (${a.sampler}, ${steps} steps) in ${seconds.toFixed(1)} s -> ${a.out}/\n  per-frame MSE of generated frames: ${fmt(m.mse)}\n  per-frame SSIM: ${fmt(m.ssim)}\n`);
    } finally {
      await p.dispose();
    }
  },
};
