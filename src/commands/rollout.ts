/** driftlab rollout / fit-corrector: long autoregressive rollouts with online drift correctors. */
import type { CommandModule } from 'yargs';
import * as fs from 'node:fs';
import { initBackend, BackendName } from '../backend.js';
import { loadPipeline } from '../diffusion/pipeline.js';
import { SAMPLERS } from '../diffusion/samplers.js';
import { VIDEO_ETA } from '../video/sample-clip.js';
import { ENGINE_CHOICES } from '../engine/select.js';
import { chain, listCorrectors, makeCorrector } from '../drift/correctors/index.js';
import { correctorContext } from '../drift/context.js';
import { anchorFramesOf } from '../diffusion/config.js';
import { resolveCorrectors } from '../drift/external.js';
import type { DriftCorrector } from '../drift/corrector.js';
import { fitAndSave, fittedDir, loadFitted, realClips } from '../drift/fitted.js';
import { rollout } from '../video/rollout.js';
import { DriftlabError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { parseCorrectorConfig, positiveInt } from './common.js';
import * as path from 'node:path';
import { readNpy } from '../io/npy.js';
import { writeGif, writeMp4 } from '../video/writers.js';
import { sideBySide } from './sample-video.js';

/** truth | generated side by side (rows: rollouts, at most 8), every k-th frame to fit maxFrames. */
export async function writeRolloutVideo(runDir: string, file: string, maxFrames: number, fps: number): Promise<void> {
  if (!/\.(gif|mp4)$/i.test(file)) throw new DriftlabError(`--video must end in .gif or .mp4, got ${file}`);
  const gen = await readNpy(path.join(runDir, 'frames.npy'));
  const truth = await readNpy(path.join(runDir, 'truth.npy'));
  const [T, N, S] = gen.shape;
  const n = Math.min(N, 8), step = Math.max(1, Math.ceil(T / maxFrames)), F = Math.ceil(T / step);
  const toClips = (a: Uint8Array) => { // [T,N,S,S] -> [n,F,S,S] in [0,1]
    const out = new Float32Array(n * F * S * S);
    for (let k = 0; k < n; k++) for (let j = 0; j < F; j++) {
      const src = (j * step * N + k) * S * S;
      for (let i = 0; i < S * S; i++) out[(k * F + j) * S * S + i] = a[src + i] / 255;
    }
    return out;
  };
  const side = sideBySide(toClips(truth.data as Uint8Array), toClips(gen.data as Uint8Array), n, F, S);
  if (file.toLowerCase().endsWith('.gif')) await writeGif(file, side.frames, F, side.H, side.W, { fps, scale: 2 });
  else await writeMp4(file, side.frames, F, side.H, side.W, { fps, scale: 4 });
  process.stderr.write(`video: ${file} (${F} frames${step > 1 ? `, one in ${step}` : ''}; truth left, generated right)\n`);
}

export const rolloutCommand: CommandModule<any, any> = {
  command: 'rollout',
  describe: 'roll a video model out autoregressively for any horizon, correcting each frame online; frames and ground truth stream to disk',
  builder: (y) => y
    .option('ckpt', { type: 'string', demandOption: true, describe: 'video checkpoint' })
    .option('out', { type: 'string', demandOption: true, describe: 'run folder (frames.npy, truth.npy, run.json, state.json)' })
    .option('horizon', { type: 'number', default: 100, describe: 'frames to generate after the context' })
    .option('rollouts', { type: 'number', default: 4, describe: 'rollouts N, run as one batch' })
    .option('context', { type: 'number', describe: "context frames K (default: the model's training K)" })
    .option('chunk', { type: 'number', default: 1, describe: 'frames kept per model call (1..F-K)' })
    .option('corrector', { type: 'string', default: 'none', describe: `corrector(s), comma-separated, applied in order: ${listCorrectors().map((c) => c.name).join(', ')}, or a module file (./my-corrector.mjs) or package` })
    .option('corrector-config', { type: 'string', describe: 'JSON settings: {"renoise": {"t": 200}} (or the settings of a single corrector)' })
    .option('sampler', { choices: SAMPLERS, default: 'ddim' })
    .option('steps', { type: 'number', default: 20, describe: 'denoising steps per model call' })
    .option('eta', { type: 'number', default: VIDEO_ETA, describe: 'DDIM eta: 0 deterministic, 1 DDPM-like noise (the video default: it tracks longer, docs/EXPERIMENTS.md "Sampler noise")' })
    .option('engine', { choices: ENGINE_CHOICES, default: 'auto' })
    .option('threads', { type: 'number' })
    .option('resume', { type: 'boolean', default: false, describe: 'continue a killed (or shorter) rollout in --out' })
    .option('video', { type: 'string', describe: 'also write truth | generated side by side for up to 8 rollouts: FILE.gif or FILE.mp4' })
    .option('video-frames', { type: 'number', default: 400, describe: 'frames in --video (every k-th frame when the rollout is longer)' })
    .option('fps', { type: 'number', default: 8 }),
  handler: async (a) => {
    // corrector modules first: a missing or malformed one fails before any model is loaded
    const names = (await resolveCorrectors([String(a.corrector)], ',')).join(',').split(',');
    await initBackend(a.backend as BackendName);
    const p = await loadPipeline(a.ckpt, 'ema', { engine: a.engine, threads: a.threads });
    try {
      if (!p.config.model.video) throw new DriftlabError(`${a.ckpt} is an image checkpoint; rollouts need a video checkpoint from 'driftlab train-video'`);
      process.stderr.write(`driftlab: ${p.engine.line}\n`);
      const cfg = parseCorrectorConfig(a.correctorConfig, 'corrector-config', true);
      const K = a.context === undefined ? p.config.model.video.contextFrames - anchorFramesOf(p.config.model.video) : Number(a.context);
      const rng = new Rng(a.seed).fork('corrector');
      const ctx = correctorContext(p, rng, K);
      const cs: DriftCorrector[] = [];
      for (const n of names) {
        const config = (names.length === 1 && !(n in cfg) ? cfg : cfg[n]) ?? {};
        const c = makeCorrector(n, ctx, config);
        const dir = fittedDir(c, config);
        if (dir) await loadFitted(c, n, dir, ctx);
        cs.push(c);
      }
      const r = await rollout({
        pipeline: p, corrector: chain(cs), out: a.out, resume: a.resume, checkpoint: a.ckpt, correctorRng: rng,
        rollouts: a.rollouts, horizon: a.horizon, context: K, chunk: a.chunk, sampler: a.sampler, steps: positiveInt('steps', a.steps), eta: a.eta, seed: a.seed,
      });
      process.stdout.write(`${a.rollouts} rollouts to frame ${r.frames} (${names.join(',')}) in ${r.seconds.toFixed(1)} s -> ${a.out}/ (frames.npy, truth.npy: uint8 [T,N,S,S])\n`);
      if (a.video) await writeRolloutVideo(a.out, a.video, positiveInt('video-frames', a.videoFrames), a.fps);
    } finally {
      await p.dispose();
    }
  },
};

export const fitCorrectorCommand: CommandModule<any, any> = {
  command: 'fit-corrector <name>',
  describe: 'fit a corrector (kalman, controller, or a module file/package with fit()) for a video checkpoint and save it to a folder',
  builder: (y) => y
    .positional('name', { type: 'string' })
    .option('ckpt', { type: 'string', demandOption: true })
    .option('out', { type: 'string', demandOption: true, describe: 'folder for the fitted corrector' })
    .option('clips', { type: 'number', default: 200, describe: 'real training clips to fit on' })
    .option('frames', { type: 'number', default: 20, describe: 'frames per clip' })
    .option('config', { type: 'string', describe: 'JSON settings of the corrector' })
    .option('engine', { choices: ENGINE_CHOICES, default: 'auto' })
    .option('overwrite', { type: 'boolean', default: false }),
  handler: async (a) => {
    if (fs.existsSync(a.out) && fs.readdirSync(a.out).length > 0 && !a.overwrite) throw new DriftlabError(`${a.out} is not empty; pass --overwrite or choose another --out`);
    // a corrector module first: a missing or malformed one fails before any model is loaded
    const [name] = await resolveCorrectors([String(a.name)]);
    const m = positiveInt('clips', a.clips), t = positiveInt('frames', a.frames);
    const config = parseCorrectorConfig(a.config, 'config', true) as Record<string, unknown>;
    await initBackend(a.backend as BackendName);
    const p = await loadPipeline(a.ckpt, 'ema', { engine: a.engine });
    try {
      const ctx = correctorContext(p, new Rng(a.seed).fork('corrector-fit'));
      const c = makeCorrector(name, ctx, config);
      if (!c.fit || !c.save) throw new DriftlabError(`corrector '${name}' has nothing to fit (it has no fit() and save())`);
      const clips = realClips(p, m, t, a.seed, a.ckpt);
      await fitAndSave(c, name, a.out, p, clips, a.seed, (l: string) => process.stderr.write(`driftlab: ${l}\n`));
      process.stdout.write(`fitted ${name} on ${m} clips x ${t} frames -> ${a.out}\n`);
    } finally {
      await p.dispose();
    }
  },
};
