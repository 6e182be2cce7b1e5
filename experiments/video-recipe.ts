/**
 * video-recipe (#12): which conditioning and objective make a video model that uses its past and
 * tracks the digits? Every arm trains the same U-Net trunk of one base preset for the same wall
 * time (`--minutes`, 2 cores) or step count, then is measured the same way:
 *   - context use (eval/context-use.ts): target x0 MSE with another clip's context / with its own,
 *     on 16 held-out windows; a model that ignores its past scores ~1
 *   - a drift study with corrector none (16 rollouts, DDIM 10 per frame): trajectory error at
 *     frames 1, 10, 50 and the tracking horizon (first frame whose mean error exceeds 8 px),
 *     beside the copy-last and blank baselines and the real continuation
 *
 * Arms are recipe changes to the base preset, applied in the order of their name's parts:
 *   attn        K context frames and K targets in one window, seen only through temporal attention
 *               (at every level but full resolution, and the middle), target frames per step
 *               kept equal to the base (batch / K windows)
 *   attn-full   the same with temporal attention at full resolution too
 *   concat      the K context frames as extra input channels of one target (MCVD-style)
 *   concat2     the same with 2 targets per window (batch / 2 windows)
 *   concat2-attn  concat2 plus temporal attention between the targets at every level
 *   -eps / -v / -x0      prediction target
 *   -minsnr     min-SNR-5 loss weighting
 *   -drop       10% context dropout (blank context; needed by history guidance)
 *   -df         one noise level per target frame (Diffusion Forcing; with 2+ targets)
 *   -cnL        context noise augmentation: context frames shown at t ~ U{0..L} (robustness to
 *               the model's own imperfect frames; the context-noise corrector's training half)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadPipeline } from '../src/diffusion/pipeline.js';
import type { Prediction } from '../src/diffusion/objective.js';
import { contextUse } from '../src/eval/context-use.js';
import { formatHorizon, trackingHorizon, TRACK_THRESHOLD_PX } from '../src/drift/metrics-summary.js';
import { statsAt } from '../src/drift/study-outputs.js';
import { writeChart, type Series } from '../src/plot/chart.js';
import { DriftlabError } from '../src/util/errors.js';
import type { VideoPreset } from '../src/video/presets.js';
import { makeRunDir, markdownTable } from './common.js';
import { ArmBudget, ArmResult, curve, trainArm } from './video-common.js';

export const DEFAULT_RECIPE_ARMS = ['attn-eps', 'attn-v', 'concat-eps', 'concat-v', 'concat-v-minsnr', 'concat-v-drop'];
export const RECIPE_TS = [100, 300, 500, 700, 900];

const TRUNKS = ['attn', 'attn-full', 'concat', 'concat2', 'concat2-attn'] as const;
const PREDICTIONS: Record<string, Prediction> = { eps: 'epsilon', v: 'v', x0: 'x0' };
const FLAGS = ['minsnr', 'drop', 'df'];

/** The preset change an arm name stands for (see the module note); unknown parts are an error. */
export function recipeArm(name: string): (p: VideoPreset) => void {
  const trunk = [...TRUNKS].sort((a, b) => b.length - a.length).find((t) => name === t || name.startsWith(`${t}-`));
  if (!trunk) throw new DriftlabError(`arm '${name}' must start with one of ${TRUNKS.join(', ')}`);
  const parts = name.slice(trunk.length).split('-').filter(Boolean);
  const pred = parts.filter((x) => x in PREDICTIONS);
  if (pred.length !== 1) throw new DriftlabError(`arm '${name}' must name one prediction target: -eps, -v or -x0`);
  const cn = parts.filter((x) => /^cn\d+$/.test(x)).map((x) => Number(x.slice(2)));
  if (cn.length > 1 || cn.some((L) => !(L >= 1 && L < 1000))) throw new DriftlabError(`arm '${name}': at most one -cnL with L in 1..999`);
  for (const x of parts) if (!(x in PREDICTIONS) && !FLAGS.includes(x) && !/^cn\d+$/.test(x)) throw new DriftlabError(`arm '${name}': unknown part '${x}'; choose from ${[...Object.keys(PREDICTIONS), ...FLAGS, 'cnL'].join(', ')}`);
  if (parts.includes('df') && !trunk.startsWith('concat2') && !trunk.startsWith('attn')) throw new DriftlabError(`arm '${name}': -df needs 2 or more targets (attn or concat2)`);
  return (p) => {
    const v = p.model.video!;
    const K = v.contextFrames, L = p.model.blockOutChannels.length;
    const baseBatch = p.train.batchSize * Math.max(1, v.frames - K); // target frames per step of the base
    let targets = 1;
    if (trunk === 'attn' || trunk === 'attn-full') {
      targets = K;
      p.model.video = { ...v, frames: 2 * K, conditioning: 'attention', temporalMid: true, temporal: Array.from({ length: L }, (_, i) => trunk === 'attn-full' || i > 0) };
    } else {
      targets = trunk === 'concat' ? 1 : 2;
      const attn = trunk === 'concat2-attn';
      p.model.video = { ...v, frames: K + targets, conditioning: 'concat', temporalMid: attn, temporal: Array.from({ length: L }, () => attn) };
    }
    p.train.batchSize = Math.max(1, Math.round(baseBatch / targets));
    p.objective = { ...p.objective, prediction: PREDICTIONS[pred[0]], weighting: parts.includes('minsnr') ? 'min-snr' : 'uniform' };
    p.train.contextDropout = parts.includes('drop') ? 0.1 : 0;
    p.train.maxContextT = cn[0] ?? 0;
    if (parts.includes('df')) p.train.independentT = true;
    else delete p.train.independentT;
  };
}

export interface VideoRecipeOptions extends ArmBudget {
  arms: string[];
  /** held-out windows of the context-use check */
  windows?: number;
  root: string;
}

export async function videoRecipe(o: VideoRecipeOptions): Promise<{ dir: string; rows: Record<string, string | number>[] }> {
  if (!o.arms.length) throw new DriftlabError('--arms must name at least one arm');
  if (new Set(o.arms).size !== o.arms.length) throw new DriftlabError(`--arms lists an arm twice: ${o.arms.join(',')}`);
  const arms = o.arms.map((name) => ({ name, apply: recipeArm(name) }));
  const run = await makeRunDir(o.root, 'video-recipe', o.seed, { ...o, log: undefined }, o.resume, ['preset', 'trainSteps', 'minutes', 'horizon', 'rollouts', 'steps']);
  const results: { r: ArmResult; cu: Awaited<ReturnType<typeof contextUse>> }[] = [];
  for (const arm of arms) {
    const r = await trainArm(run.dir, arm, o, ['none']);
    const p = await loadPipeline(r.ckpt, 'ema', { engine: o.engine });
    try {
      const cu = await contextUse(p.net, p.config.model, p.schedule, p.config.objective.prediction, (p.config.training as any).data, { windows: o.windows ?? 16, ts: RECIPE_TS, seed: o.seed + 1 });
      results.push({ r, cu });
    } finally {
      await p.dispose();
    }
  }
  const H = o.horizon, N = o.rollouts;
  const frames = [1, 10, 50].filter((k) => k <= H);
  if (!frames.includes(H)) frames.push(H);
  const thr = TRACK_THRESHOLD_PX;
  const trajRow = (label: string, traj: Float64Array, K: number, extra: Record<string, string | number>): Record<string, string | number> => {
    const row: Record<string, string | number> = { arm: label, ...extra };
    for (const k of frames) row[`traj px@${k}`] = statsAt(traj, K, N, k).mean;
    row[`tracking horizon (traj > ${thr} px)`] = formatHorizon(trackingHorizon(traj, K, N, H, thr), H);
    return row;
  };
  const rows = results.map(({ r, cu }) => {
    const steps = JSON.parse(fs.readFileSync(path.join(r.ckpt, 'train-state.json'), 'utf8')).step;
    const at = (t: number) => cu.ratioOther[cu.t.indexOf(t)];
    return trajRow(r.arm.name, r.study.metrics.perFrame.get('none')!.traj, r.study.K, {
      steps, 'train min': Number((r.trainSeconds / 60).toFixed(1)), 'final loss': r.finalLoss,
      'ctx other/true t=100': at(100), 'ctx other/true t=500': at(500), 'ctx other/true t=900': at(900),
    });
  });
  // the trivial baselines and the truth: from the first arm's study (same seed, data and K for every arm)
  const s0 = results[0].r.study, noModel = { steps: '-', 'train min': '-', 'final loss': '-', 'ctx other/true t=100': '-', 'ctx other/true t=500': '-', 'ctx other/true t=900': '-' };
  const sameK = results.every(({ r }) => r.study.K === s0.K);
  for (const b of ['copy-last', 'blank']) {
    const pf = s0.metrics.perFrame.get(b);
    if (pf && sameK) rows.push(trajRow(`${b} (baseline)`, pf.traj, s0.K, noModel));
  }
  if (s0.metrics.trajFloor && sameK) rows.push(trajRow('real (truth)', s0.metrics.trajFloor, s0.K, noModel));
  const budget = o.minutes ? `${o.minutes} minutes of training per arm (at most ${o.trainSteps} steps)` : `${o.trainSteps} training steps per arm`;
  const head = `video-recipe: base preset ${o.preset}, ${budget}, trained on ${o.trainEngine === 'tfjs' ? `tfjs with ${o.workers} worker(s)` : `engine ${o.trainEngine ?? 'auto'} with ${o.workers} worker(s)${o.trainThreads ? ` x ${o.trainThreads} thread${o.trainThreads > 1 ? 's' : ''}` : ''}`}, seed ${o.seed}. Context use: x0 MSE with another clip's context / with the true one, ${o.windows ?? 16} held-out windows. Drift: corrector none, ${N} rollouts x ${H} frames, DDIM ${o.steps} steps per frame; means over rollouts.\n\n`;
  await run.write('table.md', head + markdownTable(rows));
  await run.write('results.json', JSON.stringify({
    options: { ...o, log: undefined },
    arms: results.map(({ r, cu }) => ({ arm: r.arm.name, ckpt: r.ckpt, trainSeconds: r.trainSeconds, finalLoss: r.finalLoss, contextUse: cu, summary: r.study.summary })),
    rows,
  }, null, 2) + '\n');
  const series: Series[] = results.map(({ r }) => curve(r.study, 'none', 'traj', r.arm.name, H, N));
  if (sameK && s0.metrics.perFrame.has('copy-last')) series.push({ ...curve(s0, 'copy-last', 'traj', 'copy-last (baseline)', H, N), band: undefined, color: '#777777' });
  series.push({ name: `tracking threshold ${thr} px`, x: [1, H], y: [thr, thr], color: '#bbbbbb' });
  writeChart(path.join(run.dir, 'traj-vs-frame'), { title: 'trajectory error against frame, by recipe (corrector none)', xlabel: 'generated frame k', ylabel: 'trajectory error (canvas px)', series });
  writeChart(path.join(run.dir, 'context-use'), {
    title: 'context use: x0 MSE with another clip\'s context / with the true one', xlabel: 'noise level t of the target', ylabel: 'other / true',
    series: results.map(({ r, cu }) => ({ name: r.arm.name, x: cu.t, y: cu.ratioOther })), logY: true,
  });
  return { dir: run.dir, rows };
}
