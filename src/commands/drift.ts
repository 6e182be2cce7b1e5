/** driftlab drift: roll out every corrector, measure drift against ground truth, write the report. */
import type { CommandModule } from 'yargs';
import { initBackend, BackendName } from '../backend.js';
import { SAMPLERS } from '../diffusion/samplers.js';
import { VIDEO_ETA } from '../video/sample-clip.js';
import { ENGINE_CHOICES } from '../engine/select.js';
import { resolveCorrectors } from '../drift/external.js';
import { DEFAULT_CORRECTORS, runDriftStudy } from '../drift/study.js';
import { DriftlabError } from '../util/errors.js';
import { parseCorrectorConfig, positiveInt, positiveNumber } from './common.js';

export function parseIntList(name: string, s: unknown, min = 0): number[] {
  const parts = String(s ?? '').split(',').map((v) => v.trim()).filter(Boolean);
  const out = parts.map(Number);
  if (!out.length || out.some((v) => !Number.isInteger(v) || v < min)) throw new DriftlabError(`--${name} must list integers >= ${min}, comma-separated, got '${s}'`);
  return out;
}

export const driftCommand: CommandModule<any, any> = {
  command: 'drift',
  describe: 'roll a video model out with each corrector from the same real frames and measure drift against ground truth: metrics.jsonl, summary.json/csv, curves, videos, report.html',
  builder: (y) => y
    .option('ckpt', { type: 'string', demandOption: true, describe: 'video checkpoint (driftlab train-video); fitted correctors may ship in CKPT/correctors/NAME/' })
    .option('correctors', { type: 'string', default: DEFAULT_CORRECTORS.join(','), describe: 'comma-separated; a+b chains two correctors; a module file (./my-corrector.mjs) or package adds your own' })
    .option('corrector-config', { type: 'string', describe: 'JSON per corrector: {"renoise": {"t": 100}, "kalman": {"dir": "fitted/"}}' })
    .option('horizon', { type: 'number', default: 300, describe: 'frames to generate after the K real context frames' })
    .option('rollouts', { type: 'number', default: 4, describe: 'rollouts per corrector (one batch)' })
    .option('out', { type: 'string', demandOption: true, describe: 'study folder (new, or an earlier study with --resume)' })
    .option('resume', { type: 'boolean', default: false, describe: 'continue an interrupted study in --out (finished rollouts are kept)' })
    .option('context', { type: 'number', describe: "context frames K (default: the model's training K)" })
    .option('chunk', { type: 'number', default: 1, describe: 'frames kept per model call' })
    .option('sampler', { choices: SAMPLERS, default: 'ddim' })
    .option('steps', { type: 'number', default: 20, describe: 'denoising steps per model call' })
    .option('eta', { type: 'number', default: VIDEO_ETA, describe: 'DDIM eta: 0 deterministic, 1 DDPM-like noise (the video default: it tracks longer, docs/EXPERIMENTS.md "Sampler noise")' })
    .option('fvd-horizons', { type: 'string', default: '0,100,1000,10000', describe: 'generated-frame indices where FVD windows start (those beyond the horizon are skipped)' })
    .option('frechet-bin', { type: 'number', describe: 'frames per bin of the Frechet frame distance curve (default: horizon/25, at least 4)' })
    .option('report-frames', { type: 'string', default: '10,100,1000,10000', describe: 'frames of the summary table (the last frame is always added)' })
    .option('ref-frames', { type: 'number', default: 2000, describe: 'real frames behind the Frechet reference' })
    .option('ref-clips', { type: 'number', default: 500, describe: 'real 16-frame clips behind the FVD reference' })
    .option('fit-clips', { type: 'number', default: 200, describe: 'real clips to fit a corrector on when it has no fitted folder' })
    .option('video-frames', { type: 'number', default: 300, describe: 'frames in the side-by-side video (one in k beyond that)' })
    .option('fps', { type: 'number', default: 10 })
    .option('mp4', { type: 'boolean', default: true, describe: 'also write MP4 when ffmpeg is available (--no-mp4 to skip)' })
    .option('baselines', { type: 'boolean', default: true, describe: 'score the trivial baselines copy-last (repeat the last context frame) and blank beside the correctors (--no-baselines to skip)' })
    .option('track-threshold', { type: 'number', default: 8, describe: 'tracking horizon = first frame whose mean trajectory error exceeds this many canvas px' })
    .option('engine', { choices: ENGINE_CHOICES, default: 'auto' })
    .option('threads', { type: 'number', describe: 'onnx intra-op threads (default: all cores)' }),
  handler: async (a) => {
    await initBackend(a.backend as BackendName);
    const correctors = await resolveCorrectors(String(a.correctors).split(',').map((s) => s.trim()).filter(Boolean));
    const r = await runDriftStudy({
      ckpt: a.ckpt, correctors, correctorConfig: parseCorrectorConfig(a.correctorConfig),
      horizon: positiveInt('horizon', a.horizon), rollouts: positiveInt('rollouts', a.rollouts), out: a.out, resume: a.resume,
      context: a.context, chunk: positiveInt('chunk', a.chunk), sampler: a.sampler, steps: positiveInt('steps', a.steps), eta: a.eta, seed: a.seed,
      engine: a.engine, threads: a.threads, fvdHorizons: parseIntList('fvd-horizons', a.fvdHorizons),
      frechetBin: a.frechetBin === undefined ? undefined : positiveInt('frechet-bin', a.frechetBin),
      reportFrames: parseIntList('report-frames', a.reportFrames, 1), refFrames: positiveInt('ref-frames', a.refFrames), refClips: positiveInt('ref-clips', a.refClips),
      baselines: a.baselines, trackThreshold: positiveNumber('track-threshold', a.trackThreshold),
      fitClips: positiveInt('fit-clips', a.fitClips), videoFrames: positiveInt('video-frames', a.videoFrames), fps: a.fps, mp4: a.mp4,
      command: `driftlab ${process.argv.slice(2).join(' ')}`,
    });
    process.stdout.write(r.table);
    process.stdout.write(`report: ${r.out}/report.html\n`);
  },
};
