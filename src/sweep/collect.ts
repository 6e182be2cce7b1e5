/**
 * `driftlab sweep collect DIR`: one summary over every finished arm. Only arms whose state file
 * says done are read (the state file is written after the arm's own outputs, all atomically), so
 * a running or killed arm is never half-collected; the others are listed as missing, and arms
 * that failed for good are listed with their error (summary.json "failed", summary.md, report).
 *
 * Drift arms: each arm's summary.json (means at its report frames, Frechet, FVD) gives one row
 * per arm and corrector; the per-frame metrics.jsonl, pooled over the arms that differ only in
 * seed, give the group statistics (metrics-summary.ts: over seeds x rollouts) and the curves.
 * Experiment arms are listed with their run folder. Timing lives apart (timing.csv): the tables
 * hold only what the seeds determine, so the same sweep gives the same bytes however it ran.
 *
 *   DIR/collected/summary.json, arms.csv, groups.csv, summary.md, timing.csv, plots/, report.html
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PER_FRAME_KEYS } from '../drift/study-outputs.js';
import { frameBand, summarizeMetrics, PSNR_CAP_DB } from '../drift/metrics-summary.js';
import { writeReport, type ReportSpec } from '../drift/report.js';
import { writeFileAtomic } from '../io/atomic.js';
import { PALETTE, writeChart, type Series } from '../plot/chart.js';
import { DriftlabError } from '../util/errors.js';
import type { Arm } from './spec.js';
import { armDir, armRecord, readSweepRecord } from './state.js';

type Key = (typeof PER_FRAME_KEYS)[number];
const LABEL: Record<Key, string> = { mse: 'MSE', psnr: 'PSNR (dB)', ssim: 'SSIM', traj: 'trajectory error (px)' };
const fmt = (v: unknown, d = 4) => (typeof v !== 'number' || !Number.isFinite(v) ? '-' : Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(d));

interface ArmRow { arm: Arm; corrector: string; group: string; at: Record<string, any>; frechetLastBin: number | null; fvd: { horizon: number; fvd: number | null }[]; seconds: number }
interface Pool { label: string; corrector: string; arms: string[]; seeds: number[]; H: number; N: number; perArm: Map<string, Record<Key, Float64Array>> }

/** A group is every arm of the same command and options but the seed. */
function groupKey(a: Arm): string {
  const { seed: _s, ...rest } = a.options;
  return JSON.stringify([a.command, Object.keys(rest).sort().map((k) => [k, rest[k]])]);
}

function groupLabel(a: Arm, corrector: string): string {
  const g = Object.entries(a.grid).filter(([k]) => k !== 'seed' && k !== 'corrector').map(([k, v]) => `${k}=${k === 'checkpoint' ? path.basename(String(v)) : v}`);
  return [a.id.split('.')[0], corrector, ...g].join(' ');
}

/** per-frame metrics of one corrector of a drift study, [H*N] index (k-1)*N + n */
function readPerFrame(file: string, corrector: string, H: number, N: number): Record<Key, Float64Array> {
  const out = Object.fromEntries(PER_FRAME_KEYS.map((k) => [k, new Float64Array(H * N).fill(NaN)])) as Record<Key, Float64Array>;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const r = JSON.parse(line);
    if (r.corrector !== corrector || r.frame === undefined) continue;
    for (const k of PER_FRAME_KEYS) out[k][(r.frame - 1) * N + r.rollout] = r[k] === null ? Infinity : r[k];
  }
  return out;
}

/** Rollouts of several arms side by side: [H * (arms*N)], arm-major within each frame. */
function pooled(p: Pool, key: Key): Float64Array {
  const arrs = p.arms.map((a) => p.perArm.get(a)![key]);
  const M = arrs.length * p.N, out = new Float64Array(p.H * M);
  for (let t = 0; t < p.H; t++) arrs.forEach((a, j) => { for (let n = 0; n < p.N; n++) out[t * M + j * p.N + n] = a[t * p.N + n]; });
  return out;
}

export async function collectSweep(root: string, log: (l: string) => void = () => undefined): Promise<{ dir: string; table: string; missing: string[]; failed: { arm: string; error: string }[] }> {
  const rec = readSweepRecord(root);
  const outDir = path.join(root, 'collected');
  const rows: ArmRow[] = [], missing: string[] = [], failed: { arm: string; error: string }[] = [], experiments: { id: string; command: string; folder: string }[] = [];
  const pools = new Map<string, Pool>();
  for (const arm of rec.arms) {
    const r = armRecord(root, arm);
    if (r?.status === 'failed') { failed.push({ arm: arm.id, error: r.error ?? 'no error recorded' }); continue; }
    if (r?.status !== 'done') { missing.push(arm.id); continue; }
    const d = armDir(root, arm.id);
    if (arm.command !== 'drift') { experiments.push({ id: arm.id, command: arm.command, folder: path.relative(root, d) }); continue; }
    let s: any;
    try { s = JSON.parse(fs.readFileSync(path.join(d, 'summary.json'), 'utf8')); } catch { throw new DriftlabError(`arm ${arm.id} is marked done but ${d}/summary.json cannot be read; rerun the sweep after removing ${root}/state/${arm.id}.json`); }
    for (const [corrector, c] of Object.entries<any>(s.correctors)) {
      const group = `${groupKey(arm)}|${corrector}`;
      rows.push({ arm, corrector, group, at: c.at, frechetLastBin: c.frechetLastBin, fvd: c.fvd ?? [], seconds: c.secondsPerFrame * s.horizon });
      let p = pools.get(group);
      if (!p) pools.set(group, p = { label: groupLabel(arm, corrector), corrector, arms: [], seeds: [], H: s.horizon, N: s.rollouts, perArm: new Map() });
      if (p.H !== s.horizon || p.N !== s.rollouts) throw new DriftlabError(`arms of group '${p.label}' differ in horizon or rollouts; they cannot be pooled`);
      p.arms.push(arm.id);
      p.seeds.push(Number(arm.options.seed));
      p.perArm.set(arm.id, readPerFrame(path.join(d, 'metrics.jsonl'), corrector, s.horizon, s.rollouts));
    }
  }
  if (!rows.length && !experiments.length) throw new DriftlabError(`no arm of ${root} has finished yet${failed.length ? ` (${failed.length} failed)` : ''}; see 'driftlab sweep status ${root}'`);
  fs.mkdirSync(path.join(outDir, 'plots'), { recursive: true });

  // per arm: the arm's own summary rows
  const frames = [...new Set(rows.flatMap((r) => Object.keys(r.at).map(Number)))].sort((a, b) => a - b);
  const armCsv = ['arm,corrector,seed,horizon,checkpoint,frame,metric,mean,std,min,max'];
  for (const r of rows) {
    const o = r.arm.options, meta = [r.arm.id, r.corrector, o.seed, o.horizon ?? '', path.basename(String(o.ckpt ?? ''))];
    for (const k of Object.keys(r.at)) for (const m of PER_FRAME_KEYS) { const v = r.at[k][m]; armCsv.push([...meta, k, m, v.mean, v.std, v.min, v.max].join(',')); }
    for (const f of r.fvd) armCsv.push([...meta, f.horizon, 'fvd', f.fvd ?? '', '', '', ''].join(','));
  }
  // per group: pooled over seeds x rollouts
  const groupCsv = ['group,corrector,seeds,samples,frame,metric,mean,std,min,max'];
  const groups: Record<string, any>[] = [];
  for (const p of pools.values()) {
    const M = p.arms.length * p.N;
    const want = frames.filter((k) => k <= p.H);
    const sm = summarizeMetrics({ T: p.H, N: M, mse: pooled(p, 'mse'), psnr: pooled(p, 'psnr'), ssim: pooled(p, 'ssim'), traj: pooled(p, 'traj') }, want.map((k) => k - 1));
    const at: Record<number, Record<string, any>> = {};
    want.forEach((k, i) => {
      at[k] = {};
      for (const m of PER_FRAME_KEYS) {
        const { frame: _f, ...v } = sm[m][i];
        at[k][m] = v;
        groupCsv.push([JSON.stringify(p.label), p.corrector, p.seeds.join(' '), M, k, m, v.mean, v.std, v.min, v.max].join(','));
      }
    });
    groups.push({ group: p.label, corrector: p.corrector, arms: p.arms, seeds: p.seeds, samples: M, at });
  }

  const cols = ['arm', 'corrector', 'seed', ...frames.flatMap((k) => [`MSE@${k}`, `SSIM@${k}`, `traj px@${k}`]), 'FrechetFD last bin', 'FVD@0'];
  const armRows = rows.map((r) => [r.arm.id, r.corrector, String(r.arm.options.seed), ...frames.flatMap((k) => (r.at[k] ? [fmt(r.at[k].mse.mean), fmt(r.at[k].ssim.mean, 3), fmt(r.at[k].traj.mean, 2)] : ['-', '-', '-'])),
    fmt(r.frechetLastBin, 2), fmt(r.fvd.find((f) => f.horizon === 0)?.fvd, 2)]);
  const gCols = ['group', 'seeds', 'samples', ...frames.flatMap((k) => [`MSE@${k}`, `SSIM@${k}`, `traj px@${k}`])];
  const gRows = groups.map((g) => [g.group, g.seeds.join(' '), String(g.samples), ...frames.flatMap((k) => (g.at[k] ? [`${fmt(g.at[k].mse.mean)} ± ${fmt(g.at[k].mse.std)}`, fmt(g.at[k].ssim.mean, 3), fmt(g.at[k].traj.mean, 2)] : ['-', '-', '-']))]);
  const md = (c: string[], r: string[][]) => [c, c.map(() => '---'), ...r].map((l) => `| ${l.join(' | ')} |`).join('\n') + '\n';
  const table = md(cols, armRows);

  const figures: ReportSpec['figures'] = [];
  for (const key of PER_FRAME_KEYS) {
    const series: Series[] = [...pools.values()].map((p, i) => {
      const b = frameBand(pooled(p, key), p.H, p.arms.length * p.N, { cap: key === 'psnr' ? PSNR_CAP_DB : Infinity });
      const x = Array.from({ length: p.H }, (_, t) => t + 1);
      return { name: p.label, x, y: b.mean, band: p.arms.length * p.N > 1 ? { lo: b.lo, hi: b.hi } : undefined, color: PALETTE[i % PALETTE.length] };
    });
    if (!series.length) break;
    writeChart(path.join(outDir, 'plots', key), { title: `${LABEL[key]} against frame index, every group`, xlabel: 'generated frame k', ylabel: LABEL[key], series });
    figures.push({ id: key, title: `${LABEL[key]} per frame`, caption: 'Line: mean over seeds x rollouts of the group; band: min to max.', svg: path.join(outDir, 'plots', `${key}.svg`), png: path.join(outDir, 'plots', `${key}.png`) });
  }

  const summary = {
    sweep: rec.name, arms: rec.arms.length, collected: rows.length ? [...new Set(rows.map((r) => r.arm.id))] : [], missing, failed, experiments,
    rows: rows.map((r) => ({ arm: r.arm.id, corrector: r.corrector, grid: r.arm.grid, options: r.arm.options, at: r.at, frechetLastBin: r.frechetLastBin, fvd: r.fvd })),
    groups,
  };
  const timing = ['arm,corrector,seconds', ...rows.map((r) => [r.arm.id, r.corrector, r.seconds].join(','))];
  await writeFileAtomic(path.join(outDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  await writeFileAtomic(path.join(outDir, 'arms.csv'), armCsv.join('\n') + '\n');
  await writeFileAtomic(path.join(outDir, 'groups.csv'), groupCsv.join('\n') + '\n');
  const failedMd = failed.length ? `\nFailed arms (not collected):\n\n${failed.map((f) => `- ${f.arm}: ${f.error}`).join('\n')}\n` : '';
  await writeFileAtomic(path.join(outDir, 'summary.md'), `${table}\n${md(gCols, gRows)}${failedMd}`);
  await writeFileAtomic(path.join(outDir, 'timing.csv'), timing.join('\n') + '\n');
  const notes = [
    'Rows per arm are the arms\' own summary.json values (means over their rollouts); groups pool every rollout of the arms that differ only in seed.',
    'Frechet frame distance and FVD use driftlab\'s Moving-MNIST encoders; they compare only runs measured with the same encoders.',
    ...(missing.length ? [`Not finished, so not collected: ${missing.join(', ')}.`] : []),
    ...failed.map((f) => `Failed, so not collected: ${f.arm}: ${f.error}`),
    ...experiments.map((e) => `${e.id} (${e.command}): results in ${e.folder}/.`),
  ];
  await writeReport(path.join(outDir, 'report.html'), {
    title: `driftlab sweep: ${rec.name}`, subtitle: `${rec.arms.length - missing.length - failed.length} of ${rec.arms.length} arms finished${failed.length ? `, ${failed.length} failed` : ''}`,
    meta: { sweep: rec.spec, arms: rec.arms.length, queue: rec.queue ?? 'local' },
    tables: [{ title: 'Arms', columns: cols, rows: armRows }, { title: 'Groups (pooled over seeds)', caption: 'MSE as mean ± std over seeds x rollouts.', columns: gCols, rows: gRows }],
    figures, videos: [], notes,
  });
  log(`collected ${rows.length ? new Set(rows.map((r) => r.arm.id)).size : 0} drift arms${experiments.length ? ` and ${experiments.length} experiments` : ''} into ${outDir}/ (report.html)${missing.length ? `; not finished: ${missing.join(', ')}` : ''}${failed.length ? `; failed: ${failed.map((f) => f.arm).join(', ')}` : ''}`);
  return { dir: outDir, table, missing, failed };
}
