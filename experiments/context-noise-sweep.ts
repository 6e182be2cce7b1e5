/**
 * context-noise-sweep: train-time context noise (context frames noised to t ~ U{0..L}, as in
 * Diffusion Forcing) against drift. One model per level L with the same preset, seed and step
 * budget; each rolled out with the plain sampler (`none`) and, for L > 0, with the matching
 * inference-time `context-noise` corrector (context shown at t = L).
 * Writes results/context-noise-sweep/<run-id>/: models/, drift/ (one study per level),
 * results.json, table.md and curves (SVG + PNG).
 */
import * as path from 'node:path';
import { writeChart, type Series } from '../src/plot/chart.js';
import { statsAt } from '../src/drift/study-outputs.js';
import { makeRunDir, markdownTable } from './common.js';
import { ArmBudget, ArmResult, baselineRows, correctorsOf, curve, meanOver, trainArm } from './video-common.js';

export interface ContextNoiseSweepOptions extends ArmBudget {
  levels: number[];
  /** image checkpoint that initialises every arm's spatial layers (none: from scratch) */
  initImage?: string;
  root: string;
}

export async function contextNoiseSweep(o: ContextNoiseSweepOptions): Promise<{ dir: string; rows: Record<string, string | number>[] }> {
  const run = await makeRunDir(o.root, 'context-noise-sweep', o.seed, { ...o, log: undefined }, o.resume);
  const results: ArmResult[] = [];
  for (const L of o.levels) {
    results.push(await trainArm(run.dir, { name: `ctx-noise-${L}`, maxContextT: L, initImage: o.initImage }, o, L > 0 ? ['none', 'context-noise'] : ['none']));
  }
  const H = o.horizon, N = o.rollouts;
  const frames = [...new Set([1, 10, 100, 1000].filter((k) => k <= H).concat(H))];
  const rows: Record<string, string | number>[] = [];
  for (const r of results) {
    for (const c of correctorsOf(r.study)) {
      const row: Record<string, string | number> = { level: r.arm.maxContextT!, corrector: c, 'train loss': r.finalLoss };
      const pf = r.study.metrics.perFrame.get(c)!;
      for (const k of frames) {
        row[`MSE@${k}`] = statsAt(pf.mse, r.study.K, N, k).mean;
        row[`SSIM@${k}`] = statsAt(pf.ssim, r.study.K, N, k).mean;
        row[`traj@${k}`] = statsAt(pf.traj, r.study.K, N, k).mean;
      }
      row[`mean MSE 1..${H}`] = meanOver(r.study, c, 'mse', 1, H, N);
      row['train s'] = Math.round(r.trainSeconds);
      rows.push(row);
    }
  }
  rows.push(...baselineRows(results[0].study, frames, N, (name) => ({ level: '-', corrector: name, 'train loss': '-' }), () => ({ 'train s': '-' })));
  const head = `context-noise-sweep: ${o.preset}${o.initImage ? ` started from ${o.initImage}` : ' from scratch'}, ${o.trainSteps} steps of ${o.batchSize ?? 'the preset\'s'} clips per level (seed ${o.seed}); drift over ${N} rollouts x ${H} frames, DDIM ${o.steps} steps; means over rollouts.\n\n`;
  await run.write('table.md', head + markdownTable(rows));
  await run.write('results.json', JSON.stringify({ options: { ...o, log: undefined }, rows, summaries: results.map((r) => ({ level: r.arm.maxContextT, ckpt: r.ckpt, summary: r.study.summary })) }, null, 2) + '\n');
  for (const key of ['mse', 'ssim', 'traj'] as const) {
    const series: Series[] = [];
    for (const r of results) for (const c of correctorsOf(r.study)) series.push(curve(r.study, c, key, `L=${r.arm.maxContextT} ${c}`, H, N));
    writeChart(path.join(run.dir, `${key}-vs-frame`), { title: `${key} against frame, by train-time context noise`, xlabel: 'generated frame k', ylabel: key, series });
  }
  const lvl = results.map((r) => r.arm.maxContextT!);
  writeChart(path.join(run.dir, 'mse-vs-level'), {
    title: `mean MSE over frames 1..${H} against context noise level`, xlabel: 'train-time context noise level L', ylabel: 'MSE',
    series: [
      { name: 'none', x: lvl, y: results.map((r) => meanOver(r.study, 'none', 'mse', 1, H, N)) },
      ...(results.some((r) => r.study.metrics.perFrame.has('context-noise'))
        ? [{ name: 'context-noise (t = L)', x: lvl.filter((l) => l > 0), y: results.filter((r) => r.arm.maxContextT! > 0).map((r) => meanOver(r.study, 'context-noise', 'mse', 1, H, N)) }]
        : []),
    ],
  });
  return { dir: run.dir, rows };
}
