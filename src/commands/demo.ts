/**
 * driftlab demo (what `npm start` runs): a digit grid from the shipped image model, then a short
 * drift-vs-horizon comparison of every corrector on the shipped Moving-MNIST video model, with
 * report, plots and videos in results/demo/<run-id>/ and the summary table printed.
 * --tiny runs the same pipeline on tiny settings (the test suite uses it).
 */
import type { CommandModule } from 'yargs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend, BackendName } from '../backend.js';
import { generate, loadPipeline } from '../diffusion/pipeline.js';
import { runDriftStudy } from '../drift/study.js';
import { listCorrectors } from '../drift/correctors/index.js';
import { writeFileAtomic } from '../io/atomic.js';
import { imageGrid, rasterToPng } from '../plot/grid.js';
import { DriftlabError } from '../util/errors.js';
import { positiveInt, runId } from './common.js';
import { parseCorrectorConfig } from './common.js';
import { DEFAULT_IMAGE_CKPT, PACKAGE_ROOT } from './quickstart.js';
import { engineOption, labelsFor } from './sample.js';
import { VIDEO_ETA } from '../video/sample-clip.js';

export const DEFAULT_VIDEO_CKPT = path.join(PACKAGE_ROOT, 'checkpoints', 'mmnist-small');

export const demoCommand: CommandModule<any, any> = {
  command: 'demo',
  describe: 'the main job (npm start): digits from the image model and a drift comparison of every corrector on the video model, with an HTML report',
  builder: (y) => y
    .option('image-ckpt', { type: 'string', default: DEFAULT_IMAGE_CKPT, describe: 'image checkpoint for the digit grid' })
    .option('ckpt', { type: 'string', default: DEFAULT_VIDEO_CKPT, describe: 'video checkpoint (fitted correctors in CKPT/correctors/)' })
    .option('out', { type: 'string', default: 'results/demo', describe: 'results root; a new <run-id> folder is made inside' })
    .option('correctors', { type: 'string', describe: 'comma-separated (default: every registered corrector; context-noise only for models trained with context noise)' })
    .option('horizon', { type: 'number', default: 200, describe: 'frames per rollout' })
    .option('rollouts', { type: 'number', default: 4 })
    .option('steps', { type: 'number', default: 10, describe: 'DDIM steps per model call' })
    .option('chunk', { type: 'number', describe: "frames kept per model call (default: every target the model generates per call; the shipped model makes 1 from 8 context frames)" })
    .option('corrector-config', { type: 'string', default: '{"renoise": {"t": 200, "steps": 4}}', describe: 'JSON per corrector (default: renoise re-denoises from t* = 200 in 4 DDIM steps)' })
    .option('tiny', { type: 'boolean', default: false, describe: 'tiny settings (a few frames, 2 rollouts, 2 DDIM steps) to check the whole pipeline in seconds' })
    .option('engine', engineOption),
  handler: async (a) => {
    const started = Date.now();
    const dir = path.join(a.out, runId(a.seed));
    if (fs.existsSync(dir)) throw new DriftlabError(`${dir} already exists; wait a second or pass another --out`);
    for (const [what, ck] of [['image', a.imageCkpt], ['video', a.ckpt]]) {
      if (!fs.existsSync(path.join(ck, 'config.json'))) throw new DriftlabError(`no ${what} checkpoint at ${ck}; pass --${what === 'image' ? 'image-ckpt' : 'ckpt'} DIR`);
    }
    const info = await initBackend(a.backend as BackendName, { quiet: true });
    const tiny = Boolean(a.tiny);
    const horizon = tiny ? 8 : positiveInt('horizon', a.horizon), rollouts = tiny ? 2 : positiveInt('rollouts', a.rollouts);
    const video = JSON.parse(fs.readFileSync(path.join(a.ckpt, 'config.json'), 'utf8')).model?.video;
    const targets = video ? Math.max(1, video.frames - video.contextFrames) : 1;
    const steps = tiny ? 2 : positiveInt('steps', a.steps), chunk = a.chunk === undefined ? (tiny ? Math.min(2, targets) : targets) : positiveInt('chunk', a.chunk);
    fs.mkdirSync(dir, { recursive: true });

    // 1. digits from the image model
    const ip = await loadPipeline(a.imageCkpt, 'ema', { engine: a.engine });
    process.stderr.write(`driftlab: ${ip.engine.line}\n`);
    const n = tiny ? 20 : 100, S = ip.config.model.sampleSize;
    const guidance = ip.config.model.numClasses > 0 ? 2 : 1;
    const digitsPng = path.join(dir, 'digits.png');
    try {
      const g = await generate(ip, { n, batch: n, sampler: 'ddim', steps: tiny ? 4 : 25, eta: 0, guidance, labels: labelsFor(ip, n, undefined), clipX0: true, seed: a.seed });
      await writeFileAtomic(digitsPng, rasterToPng(imageGrid(g.images, n, S, S, { nrow: 10, scale: 2 })));
    } finally {
      await ip.dispose();
    }
    process.stderr.write(`digits: ${digitsPng} (${n} samples, DDIM ${tiny ? 4 : 25} steps, guidance ${guidance})\n`);

    // 2. drift of every corrector on the video model
    const trainedCtx = Number(JSON.parse(fs.readFileSync(path.join(a.ckpt, 'config.json'), 'utf8')).training?.maxContextT ?? 0);
    const correctors = a.correctors
      ? String(a.correctors).split(',').map((s) => s.trim()).filter(Boolean)
      : listCorrectors().filter((c) => !c.inLoop && !c.source).map((c) => c.name).filter((c) => c !== 'context-noise' || trainedCtx > 0).sort((x, y) => (x === 'none' ? -1 : y === 'none' ? 1 : 0));
    const r = await runDriftStudy({
      ckpt: a.ckpt, correctors, correctorConfig: parseCorrectorConfig(a.correctorConfig), horizon, rollouts, steps, chunk, seed: a.seed, engine: a.engine, out: dir,
      refFrames: tiny ? 64 : 2000, refClips: tiny ? 16 : 400, fitClips: tiny ? 8 : 200, fitFrames: tiny ? 8 : 20,
      videoFrames: tiny ? 20 : 300, fvdHorizons: tiny ? [0] : [0, 100], frechetBin: tiny ? 4 : undefined, reportFrames: [1, 10, 100, 1000],
      title: 'driftlab demo: drift of an autoregressive Moving-MNIST video model, by corrector',
      extraFigures: [{ id: 'digits', title: 'Digits from the image model', caption: `${n} class-conditional samples (labels 0..9 by column), DDIM ${tiny ? 4 : 25} steps, guidance ${guidance}, ${a.imageCkpt}`, png: digitsPng }],
      command: `driftlab demo${tiny ? ' --tiny' : ''} --seed ${a.seed}${tiny ? '' : ` --horizon ${horizon} --rollouts ${rollouts} --steps ${steps} --chunk ${chunk}`}`,
    });
    const seconds = (Date.now() - started) / 1000;
    await writeFileAtomic(path.join(dir, 'demo.json'), JSON.stringify({ seconds, tiny, backend: info.line, node: process.version, correctors, horizon, rollouts, steps, chunk }, null, 2) + '\n');
    process.stdout.write([
      `driftlab demo: ${correctors.length} correctors x ${rollouts} rollouts x ${horizon} frames (DDIM ${steps} steps per model call at eta ${VIDEO_ETA}, ${chunk} frame${chunk > 1 ? 's' : ''} kept per call) in ${seconds.toFixed(0)} s`,
      '', r.table,
      `MSE, SSIM against the simulator's continuation (frames in [0,1]); traj px = digit position error in canvas pixels;`,
      `FrechetFD = Frechet frame distance with the driftlab Moving-MNIST frame encoder, FVD = with the driftlab clip encoder`,
      `(neither is comparable with Inception/I3D numbers in papers). Means over ${rollouts} rollouts.`,
      '', `report  ${path.join(dir, 'report.html')}`, `digits  ${digitsPng}`, `video   ${path.join(dir, 'videos', 'side-by-side.gif')}`, `plots   ${path.join(dir, 'plots')}/`, '',
    ].join('\n'));
  },
};
