/**
 * image-to-video: the video model started from an MNIST image model (spatial layers copied by
 * name, temporal layers zero-initialised so each starts as the identity) against the same model
 * trained from scratch, at equal compute (same preset, batch, seed and number of steps), then
 * the per-frame drift of each (plain sampler, `none`).
 *
 * The image model: --init-image, or the shipped checkpoints/mnist-small for mmnist-small; for
 * other presets one is trained first on the bundled MNIST with the preset's spatial U-Net for
 * --image-steps (that pre-training is the point of the study, so it is not counted in the
 * video budget; its wall time is reported).
 * Writes results/image-to-video/<run-id>/: image/ (if trained), models/, drift/, results.json,
 * table.md, curves (SVG + PNG).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadBundledMnist } from '../datasets/mnist/index.js';
import { getPreset } from '../src/diffusion/presets.js';
import { train } from '../src/diffusion/train.js';
import { writeChart } from '../src/plot/chart.js';
import { statsAt } from '../src/drift/study-outputs.js';
import { DriftlabError } from '../src/util/errors.js';
import { getVideoPreset } from '../src/video/presets.js';
import { makeRunDir, markdownTable } from './common.js';
import { ArmBudget, ArmResult, baselineRows, curve, meanOver, trainArm } from './video-common.js';

export interface ImageToVideoOptions extends ArmBudget {
  initImage?: string;
  imageSteps: number;
  /** the shipped image checkpoint used for mmnist-small when --init-image is not given */
  defaultImage?: string;
  root: string;
}

export async function imageToVideo(o: ImageToVideoOptions): Promise<{ dir: string; rows: Record<string, string | number>[] }> {
  const run = await makeRunDir(o.root, 'image-to-video', o.seed, { ...o, log: undefined }, o.resume);
  let initImage = o.initImage;
  let imageSeconds: number | null = null;
  if (!initImage && o.preset === 'mmnist-small' && o.defaultImage && fs.existsSync(path.join(o.defaultImage, 'config.json'))) initImage = o.defaultImage;
  if (!initImage) {
    const vp = getVideoPreset(o.preset);
    const { video: _v, ...spatial } = vp.model;
    const ip = getPreset('mnist-tiny');
    ip.name = `${o.preset}-spatial`;
    ip.model = { ...spatial, sampleSize: 28, numClasses: 0 };
    ip.train.steps = o.imageSteps;
    ip.train.seed = o.seed;
    ip.train.checkpointEvery = Math.max(1, Math.min(ip.train.checkpointEvery, o.imageSteps));
    initImage = path.join(run.dir, 'image');
    o.log?.(`image model: ${o.preset}'s spatial U-Net on bundled MNIST for ${o.imageSteps} steps`);
    imageSeconds = (await train({ preset: ip, data: loadBundledMnist(), out: initImage, workers: o.workers, backend: o.backend, quiet: o.quiet, resume: true })).seconds;
  }
  if (!fs.existsSync(path.join(initImage, 'config.json'))) throw new DriftlabError(`no image checkpoint at ${initImage}`);
  const arms: ArmResult[] = [];
  arms.push(await trainArm(run.dir, { name: 'from-image', initImage }, o, ['none']));
  arms.push(await trainArm(run.dir, { name: 'from-scratch' }, o, ['none']));
  const H = o.horizon, N = o.rollouts;
  const frames = [...new Set([1, 10, 100, 1000].filter((k) => k <= H).concat(H))];
  const rows = arms.map((r) => {
    const pf = r.study.metrics.perFrame.get('none')!;
    const row: Record<string, string | number> = { model: r.arm.name, 'final train loss': r.finalLoss, 'train s': Math.round(r.trainSeconds) };
    for (const k of frames) {
      row[`MSE@${k}`] = statsAt(pf.mse, r.study.K, N, k).mean;
      row[`SSIM@${k}`] = statsAt(pf.ssim, r.study.K, N, k).mean;
      row[`traj@${k}`] = statsAt(pf.traj, r.study.K, N, k).mean;
    }
    row[`mean MSE 1..${H}`] = meanOver(r.study, 'none', 'mse', 1, H, N);
    const fr = r.study.metrics.frechet.get('none');
    row['FrechetFD last bin'] = fr?.frechet.at(-1) ?? NaN;
    return row;
  });
  rows.push(...baselineRows(arms[0].study, frames, N, (name) => ({ model: name, 'final train loss': '-', 'train s': '-' }), (c) => ({ 'FrechetFD last bin': arms[0].study.metrics.frechet.get(c)?.frechet.at(-1) ?? NaN })));
  const head = `image-to-video: ${o.preset}, ${o.trainSteps} video steps per arm (seed ${o.seed}); image model ${path.basename(path.resolve(initImage))}${imageSeconds !== null ? ` (trained here, ${Math.round(imageSeconds)} s)` : ''}; drift over ${N} rollouts x ${H} frames, DDIM ${o.steps} steps, corrector none.\n\n`;
  await run.write('table.md', head + markdownTable(rows));
  await run.write('results.json', JSON.stringify({ options: { ...o, log: undefined }, initImage, imageSeconds, rows, summaries: arms.map((r) => ({ arm: r.arm.name, ckpt: r.ckpt, summary: r.study.summary })) }, null, 2) + '\n');
  for (const key of ['mse', 'ssim', 'traj'] as const) {
    writeChart(path.join(run.dir, `${key}-vs-frame`), {
      title: `${key} against frame: image-initialised vs from scratch`, xlabel: 'generated frame k',
      ylabel: { mse: 'MSE (frames in [0,1])', ssim: 'SSIM', traj: 'trajectory error (canvas px)' }[key],
      series: arms.map((r) => curve(r.study, 'none', key, r.arm.name, H, N)),
    });
  }
  // training curves from the train logs (loss per step)
  const lossSeries = arms.map((r) => {
    const lines = fs.readFileSync(path.join(r.ckpt, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((j) => Number.isFinite(j.loss) && Number.isFinite(j.step));
    return { name: r.arm.name, x: lines.map((j) => j.step), y: lines.map((j) => j.loss) };
  });
  writeChart(path.join(run.dir, 'train-loss'), { title: 'training loss (target frames)', xlabel: 'step', ylabel: 'loss', series: lossSeries, logY: true });
  return { dir: run.dir, rows };
}
