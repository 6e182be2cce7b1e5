/**
 * What a drift study writes once its rollouts exist: every metric per corrector (metrics.ts),
 * then metrics.jsonl, summary.json, summary.csv, curves (SVG + PNG), the side-by-side video and
 * report.html. Metrics are computed from the stored 8-bit frames only.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { MovingMnistConfig } from '../../datasets/moving-mnist/index.js';
import { loadFeatureNet, type FeatureNet } from '../eval/features/index.js';
import { toEncoderFrames } from '../eval/features/video-input.js';
import type { GaussianStats } from '../eval/frechet.js';
import { writeFileAtomic } from '../io/atomic.js';
import { PALETTE, writeChart, type Series } from '../plot/chart.js';
import { findFfmpeg, writeGif, writeMp4 } from '../video/writers.js';
import { BASELINE_NOTE, type BaselineName } from './baselines.js';
import { formatHorizon, frechetFrameCurve, fvdAtHorizons, readRunArrays, realClipStats, realFrameStats, scoreRun, trackingHorizon, TRACK_THRESHOLD_PX, type RunArrays } from './metrics.js';
import { writeReport, type ReportSpec } from './report.js';
import { tileVideo } from './study-video.js';

export const FRAME_FD_NAME = 'Frechet frame distance (driftlab Moving-MNIST frame encoder; not comparable with Inception FID)';
export const FVD_NAME = 'FVD (driftlab Moving-MNIST clip encoder; not comparable with I3D-based FVD)';

export interface StudyData {
  study: Record<string, unknown>;
  /** correctors' rollouts, then (baseline: true) the trivial baselines of baselines.ts */
  runs: { name: string; dir: string; seconds: number; describe: Record<string, unknown>; baseline?: boolean }[];
  K: number;
  horizon: number;
  N: number;
  S: number;
  mmnist: MovingMnistConfig & { pool: number };
}

/**
 * Every run's frames.npy and the shared truth.npy, read once per study and kept for the three
 * passes over them (per-frame scores, Frechet/FVD, the side-by-side video).
 */
const loaded = new WeakMap<StudyData, Map<string, RunArrays>>();
async function studyArrays(d: StudyData): Promise<Map<string, RunArrays>> {
  let m = loaded.get(d);
  if (!m) {
    m = new Map();
    for (const r of d.runs) m.set(r.name, await readRunArrays(r.dir));
    loaded.set(d, m);
  }
  return m;
}

export type PerFrame = { mse: Float64Array; psnr: Float64Array; ssim: Float64Array; traj: Float64Array };
export interface StudyMetrics {
  perFrame: Map<string, PerFrame>;
  /** Frechet frame distance per bin of generated frames; 'truth' = the real continuation (same sample size) */
  frechet: Map<string, { start: number[]; frechet: number[] }>;
  frechetBin: number;
  fvd: Map<string, { horizon: number; windows: number; fvd: number | null }[]>;
  fvdHorizons: number[];
  /** trajectory error of the real continuation itself (the recovery's floor), [T*N] */
  trajFloor: Float64Array | null;
}

export const PER_FRAME_KEYS = ['mse', 'psnr', 'ssim', 'traj'] as const;
const LABEL: Record<string, string> = { mse: 'MSE', psnr: 'PSNR (dB)', ssim: 'SSIM', traj: 'trajectory error (px)' };

export async function computeStudyMetrics(
  d: StudyData, o: { fvdHorizons?: number[]; frechetBin?: number; refFrames?: number; refClips?: number; seed: number; log?: (l: string) => void },
): Promise<StudyMetrics> {
  const { K, horizon: H, N, S } = d;
  const T = K + H;
  const toInput = (u8: Uint8Array, count: number, s: number) => toEncoderFrames(u8, count, s, 'u8');
  const perFrame = new Map<string, PerFrame>();
  let trajFloor: Float64Array | null = null;
  const arrays = await studyArrays(d);
  for (const r of d.runs) {
    const m = scoreRun(arrays.get(r.name)!, { trajFloor: trajFloor === null });
    perFrame.set(r.name, { mse: m.mse, psnr: m.psnr, ssim: m.ssim, traj: m.traj });
    trajFloor ??= m.trajFloor ?? null;
  }
  const bin = o.frechetBin ?? Math.max(4, Math.ceil(H / 25));
  const frechet = new Map<string, { start: number[]; frechet: number[] }>();
  const fvd = new Map<string, { horizon: number; windows: number; fvd: number | null }[]>();
  const fvdHorizons = o.fvdHorizons ?? [0, 100, 1000, 10000];
  let frameNet: FeatureNet | null = null, clipNet: FeatureNet | null = null;
  try {
    frameNet = await loadFeatureNet('mmnist-frame');
    clipNet = await loadFeatureNet('mmnist-clip');
    o.log?.(`reference statistics: ${o.refFrames ?? 2000} real frames, ${o.refClips ?? 500} real clips`);
    const refSeed = o.seed + 7919; // fresh simulator clips, not the rollouts' own
    const fRef: GaussianStats = await realFrameStats(d.mmnist, refSeed, o.refFrames ?? 2000, S, frameNet, toInput);
    const cRef: GaussianStats = await realClipStats(d.mmnist, refSeed, o.refClips ?? 500, S, clipNet, toInput);
    const sources: [string, Uint8Array][] = [['truth', arrays.get(d.runs[0].name)!.truth]];
    for (const r of d.runs) sources.push([r.name, arrays.get(r.name)!.frames]);
    for (const [name, frames] of sources) {
      // generated frames only: drop the K context frames
      const gen = frames.subarray(K * N * S * S);
      const c = await frechetFrameCurve(gen, H, N, S, frameNet, fRef, bin, toInput);
      frechet.set(name, { start: c.start.map((s) => s + 1), frechet: c.frechet });
      const rows = await fvdAtHorizons(gen, H, N, S, clipNet, cRef, fvdHorizons, 64, 4, toInput);
      fvd.set(name, rows.map((r: any) => ({ horizon: r.horizon, windows: r.windows ?? 0, fvd: r.skipped || !Number.isFinite(r.fvd) ? null : r.fvd })));
    }
  } finally {
    frameNet?.dispose();
    clipNet?.dispose();
  }
  return { perFrame, frechet, frechetBin: bin, fvd, fvdHorizons, trajFloor };
}

/** mean, min and max over rollouts at generated frame k (1-based) */
export function statsAt(a: Float64Array, K: number, N: number, k: number): { mean: number; std: number; min: number; max: number } {
  const t = K + k - 1;
  let s = 0, s2 = 0, lo = Infinity, hi = -Infinity, n = 0;
  for (let i = 0; i < N; i++) {
    const v = a[t * N + i];
    if (!Number.isFinite(v)) continue;
    s += v; s2 += v * v; n++;
    lo = Math.min(lo, v); hi = Math.max(hi, v);
  }
  const mean = n ? s / n : NaN;
  return { mean, std: n > 1 ? Math.sqrt(Math.max(0, (s2 - n * mean * mean) / (n - 1))) : 0, min: lo, max: hi };
}

const fmt = (v: number | null | undefined, d = 4) => (v === null || v === undefined || !Number.isFinite(v) ? '-' : Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(d));

export async function writeStudyOutputs(
  out: string, d: StudyData, m: StudyMetrics,
  o: { title?: string; trackThreshold?: number; extraFigures?: ReportSpec['figures']; reportFrames?: number[]; videoFrames?: number; fps?: number; mp4?: boolean; log?: (l: string) => void },
): Promise<{ summary: Record<string, any>; table: string; files: string[] }> {
  const { K, horizon: H, N, S } = d;
  const files: string[] = [];
  const thr = o.trackThreshold ?? TRACK_THRESHOLD_PX;
  const horizonCol = `tracking horizon (traj > ${thr} px)`;
  const reportFrames = [...new Set([...(o.reportFrames ?? [10, 100, 1000, 10000]).filter((k) => k >= 1 && k <= H), H])].sort((a, b) => a - b);

  // metrics.jsonl: one line per (corrector, rollout, frame), then the curves
  const lines: string[] = [];
  for (const [name, pf] of m.perFrame) for (let k = 1; k <= H; k++) for (let n = 0; n < N; n++) {
    const i = (K + k - 1) * N + n;
    lines.push(JSON.stringify({ corrector: name, rollout: n, frame: k, mse: pf.mse[i], psnr: Number.isFinite(pf.psnr[i]) ? pf.psnr[i] : null, ssim: pf.ssim[i], traj: pf.traj[i] }));
  }
  for (const [name, c] of m.frechet) c.start.forEach((s, j) => lines.push(JSON.stringify({ corrector: name, metric: 'frechet-frame', frames: [s, Math.min(H, s + m.frechetBin - 1)], value: c.frechet[j] })));
  for (const [name, rows] of m.fvd) for (const r of rows) lines.push(JSON.stringify({ corrector: name, metric: 'fvd', horizon: r.horizon, windows: r.windows, value: r.fvd }));
  await writeFileAtomic(path.join(out, 'metrics.jsonl'), lines.join('\n') + '\n');
  files.push('metrics.jsonl');

  // summary.json / summary.csv
  const summary: Record<string, any> = {
    metrics: {
      mse: 'per-pixel mean squared error against the simulator, frames in [0,1]', psnr: 'PSNR in dB, data range 1',
      ssim: 'SSIM (Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, data range 1)',
      traj: 'mean distance (canvas pixels) between digit positions recovered from the frame and the simulator trajectory',
      frechet: `${FRAME_FD_NAME}; frames of ${m.frechetBin} consecutive indices x ${N} rollouts per bin; the truth row is the real continuation at the same sample size`,
      fvd: `${FVD_NAME}; 16-frame windows starting every 4 frames over 64 frames from each horizon, all rollouts`,
      trackingHorizon: `first generated frame at which the mean trajectory error over rollouts exceeds ${thr} canvas px (null: never within the horizon)`,
    },
    trackThresholdPx: thr,
    baselines: Object.fromEntries(d.runs.filter((r) => r.baseline).map((r) => [r.name, BASELINE_NOTE[r.name as BaselineName] ?? ''])),
    frames: 'frame k = the k-th generated frame (the K context frames are real and not scored)',
    horizon: H, rollouts: N, context: K, reportFrames, correctors: {},
  };
  const csv = ['corrector,frame,metric,mean,std,min,max'];
  for (const r of d.runs) {
    const pf = m.perFrame.get(r.name)!;
    const at: Record<string, any> = {};
    for (const k of reportFrames) {
      at[k] = {};
      for (const key of PER_FRAME_KEYS) {
        const s = statsAt(pf[key], K, N, k);
        at[k][key] = s;
        csv.push([r.name, k, key, s.mean, s.std, s.min, s.max].join(','));
      }
    }
    const fr = m.frechet.get(r.name)!;
    summary.correctors[r.name] = {
      corrector: r.describe, baseline: !!r.baseline, secondsPerFrame: r.baseline ? null : r.seconds / H, at,
      trackingHorizon: trackingHorizon(pf.traj, K, N, H, thr),
      frechetLastBin: fr.frechet.at(-1) ?? null, frechet: fr, fvd: m.fvd.get(r.name),
    };
    for (const f of m.fvd.get(r.name) ?? []) csv.push([r.name, f.horizon, 'fvd', f.fvd ?? '', '', '', ''].join(','));
    csv.push([r.name, '', `tracking-horizon-${thr}px`, summary.correctors[r.name].trackingHorizon ?? '', '', '', ''].join(','));
  }
  summary.truth = {
    frechet: m.frechet.get('truth'), fvd: m.fvd.get('truth'),
    trajFloor: m.trajFloor ? Object.fromEntries(reportFrames.map((k) => [k, statsAt(m.trajFloor!, K, N, k)])) : null,
    trackingHorizon: m.trajFloor ? trackingHorizon(m.trajFloor, K, N, H, thr) : null,
  };
  await writeFileAtomic(path.join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  await writeFileAtomic(path.join(out, 'summary.csv'), csv.join('\n') + '\n');
  files.push('summary.json', 'summary.csv');

  // curves: one line per corrector, band = min..max over rollouts
  const plotDir = path.join(out, 'plots');
  fs.mkdirSync(plotDir, { recursive: true });
  const xs = Array.from({ length: H }, (_, i) => i + 1);
  const colors = new Map(d.runs.map((r, i) => [r.name, PALETTE[i % PALETTE.length]]));
  const figures: ReportSpec['figures'] = [...(o.extraFigures ?? [])];
  for (const key of PER_FRAME_KEYS) {
    const series: Series[] = d.runs.map((r) => {
      const s = xs.map((k) => statsAt(m.perFrame.get(r.name)![key], K, N, k));
      const clean = (v: number) => (Number.isFinite(v) ? v : 99);
      return { name: r.name, x: xs, y: s.map((v) => clean(v.mean)), band: N > 1 && !r.baseline ? { lo: s.map((v) => clean(v.min)), hi: s.map((v) => clean(v.max)) } : undefined, color: colors.get(r.name) };
    });
    if (key === 'traj' && m.trajFloor) series.push({ name: 'real (recovery floor)', x: xs, y: xs.map((k) => statsAt(m.trajFloor!, K, N, k).mean), color: '#000000' });
    if (key === 'traj') series.push({ name: `tracking threshold ${thr} px`, x: [1, H], y: [thr, thr], color: '#999999' });
    writeChart(path.join(plotDir, key), { title: `${LABEL[key]} against frame index`, xlabel: 'generated frame k', ylabel: LABEL[key], series });
    const extra = key === 'traj' ? ` The grey line is the tracking threshold: the ${horizonCol} column gives where each mean curve first crosses it.` : '';
    figures.push({ id: key, title: `${LABEL[key]} per frame`, caption: `${summary.metrics[key]}. Line: mean over ${N} rollouts; band: min to max (none for the trivial baselines copy-last and blank).${extra}`, svg: path.join(plotDir, `${key}.svg`), png: path.join(plotDir, `${key}.png`) });
    files.push(`plots/${key}.svg`, `plots/${key}.png`);
  }
  const fSeries: Series[] = [...m.frechet].map(([name, c]) => ({ name: name === 'truth' ? 'real (truth)' : name, x: c.start, y: c.frechet, color: name === 'truth' ? '#000000' : colors.get(name) }));
  writeChart(path.join(plotDir, 'frechet'), { title: 'Frechet frame distance to real frames', xlabel: 'generated frame k (bin start)', ylabel: 'Frechet frame distance', series: fSeries });
  figures.push({ id: 'frechet', title: 'Frechet frame distance per frame bin', caption: `${summary.metrics.frechet}.`, svg: path.join(plotDir, 'frechet.svg'), png: path.join(plotDir, 'frechet.png') });
  files.push('plots/frechet.svg', 'plots/frechet.png');

  // side-by-side video: truth | each corrector, rows = rollouts (at most 4)
  const vidDir = path.join(out, 'videos');
  fs.mkdirSync(vidDir, { recursive: true });
  const arrays = await studyArrays(d);
  const truth = arrays.get(d.runs[0].name)!.truth;
  const shown = d.runs.filter((r) => r.name !== 'blank'); // a black column shows nothing
  const gens = shown.map((r) => arrays.get(r.name)!.frames);
  const tv = tileVideo(truth, gens, ['truth', ...shown.map((r) => r.name)], K + H, N, S, { maxFrames: o.videoFrames ?? 300, rows: Math.min(N, 4), context: K });
  const videos: ReportSpec['videos'] = [];
  const gifPath = path.join(vidDir, 'side-by-side.gif');
  await writeGif(gifPath, tv.frames, tv.T, tv.H, tv.W, { fps: o.fps ?? 10 });
  files.push('videos/side-by-side.gif');
  let mp4Path: string | undefined;
  if (o.mp4 !== false && findFfmpeg()) {
    mp4Path = path.join(vidDir, 'side-by-side.mp4');
    await writeMp4(mp4Path, tv.frames, tv.T, tv.H, tv.W, { fps: o.fps ?? 10, scale: 2 });
    files.push('videos/side-by-side.mp4');
  }
  videos.push({
    id: 'side-by-side', title: 'Ground truth and every corrector, side by side',
    caption: `Columns: ${['truth', ...shown.map((r) => r.name)].join(' | ')}; rows: rollouts 1..${tv.rows}; ${tv.step > 1 ? `one frame in ${tv.step}` : 'every frame'}, the frame index in the header.`,
    gif: gifPath, mp4: mp4Path,
  });

  // summary table (printed and in the report)
  const cols = ['corrector', ...reportFrames.flatMap((k) => [`MSE@${k}`, `SSIM@${k}`, `traj px@${k}`]), horizonCol, 'FrechetFD last bin', ...m.fvdHorizons.filter((h) => h < H).map((h) => `FVD@${h}`), 's/frame'];
  const rows: (string | number)[][] = d.runs.map((r) => {
    const c = summary.correctors[r.name];
    return [r.baseline ? `${r.name} (baseline)` : r.name, ...reportFrames.flatMap((k) => [fmt(c.at[k].mse.mean), fmt(c.at[k].ssim.mean, 3), fmt(c.at[k].traj.mean, 2)]), formatHorizon(c.trackingHorizon, H), fmt(c.frechetLastBin, 2),
      ...m.fvdHorizons.filter((h) => h < H).map((h) => fmt(c.fvd.find((f: any) => f.horizon === h)?.fvd, 2)), r.baseline ? '-' : fmt(c.secondsPerFrame, 3)];
  });
  const tr = summary.truth;
  rows.push(['real (truth)', ...reportFrames.flatMap((k) => ['0', '1', m.trajFloor ? fmt(statsAt(m.trajFloor, K, N, k).mean, 2) : '-']), m.trajFloor ? formatHorizon(tr.trackingHorizon, H) : '-', fmt(tr.frechet?.frechet.at(-1), 2), ...m.fvdHorizons.filter((h) => h < H).map((h) => fmt(tr.fvd?.find((f: any) => f.horizon === h)?.fvd, 2)), '-']);
  const table = [cols.join(' | '), cols.map(() => '---').join(' | '), ...rows.map((r) => r.join(' | '))].map((l) => `| ${l} |`).join('\n') + '\n';
  await writeFileAtomic(path.join(out, 'summary.md'), table);
  files.push('summary.md');

  const st = d.study as any;
  await writeReport(path.join(out, 'report.html'), {
    title: o.title ?? 'driftlab drift study',
    subtitle: `${N} rollouts x ${H} frames, correctors ${d.runs.filter((r) => !r.baseline).map((r) => r.name).join(', ')}; baselines ${d.runs.filter((r) => r.baseline).map((r) => r.name).join(', ') || 'none'}`,
    meta: {
      checkpoint: String(st.checkpoint), 'model id': String(st.modelId), engine: String(st.engine), sampler: `${st.sampler}, ${st.steps} steps, eta ${st.eta}`,
      context: K, chunk: String(st.chunk), seed: String(st.seed), command: String(st.command ?? '-'), date: new Date().toISOString(),
    },
    tables: [{ title: 'Summary', caption: `${summary.frames}. Values are means over rollouts; the real row is the simulator's own continuation. Baselines: copy-last ${BASELINE_NOTE['copy-last']}, blank ${BASELINE_NOTE.blank}; a corrector that does not beat copy-last on trajectory error is not tracking the digits. ${horizonCol}: ${summary.metrics.trackingHorizon}.`, columns: cols, rows }],
    figures, videos,
    notes: [
      `Frechet frame distance: ${FRAME_FD_NAME}.`, `FVD: ${FVD_NAME}.`,
      'The encoders were trained by driftlab on Moving-MNIST (checkpoints/mmnist-frame, checkpoints/mmnist-clip); their distances only compare runs measured with the same encoders.',
      'Frechet distances from few samples are biased upward; read them against the real (truth) row, computed at the same sample size.',
      summary.frames,
    ],
  });
  files.push('report.html');
  o.log?.(`wrote ${files.length} files to ${out}/ (report.html)`);
  return { summary, table, files };
}
