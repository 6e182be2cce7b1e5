/**
 * `driftlab drift` end to end on a tiny model: every output file, metrics that agree with an
 * independent recomputation from the stored frames, resume without new rollouts, the report
 * rendered in headless Chromium, and bad input.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tinyVideoPipeline } from '../helpers/video.js';
import { rejectsDriftlab, tempDir } from '../helpers/common.js';
import { runDriftStudy, type DriftStudyOptions } from '../../src/drift/study.js';
import { VIDEO_ETA } from '../../src/video/sample-clip.js';
import { readNpy } from '../../src/io/npy.js';
import { decodeGif } from '../../src/video/writers.js';
import { decodePng } from '../../src/plot/png.js';
import { findChromium, checkRender } from '../../src/util/chromium.js';

const dir = tempDir('driftlab-study-');
const tiny = tinyVideoPipeline(dir);
const H = 6, N = 2;
const CORRECTORS = ['none', 'renoise', 'kalman', 'controller'];
const RUNS = [...CORRECTORS, 'copy-last', 'blank'];
const opts = (out: string, extra: Partial<DriftStudyOptions> = {}): DriftStudyOptions => ({
  ckpt: tiny.ckpt, correctors: CORRECTORS, horizon: H, rollouts: N, steps: 2, seed: 3, engine: 'tfjs', out, quiet: true,
  correctorConfig: { kalman: { d: 4 }, renoise: { t: 50 }, controller: { rounds: 1, clips: 4, rolloutFrames: 2, epochs: 1, steps: 2 } },
  fitClips: 12, fitFrames: 8, refFrames: 48, refClips: 12, fvdHorizons: [0, 100], frechetBin: 3, videoFrames: 12, mp4: false, ...extra,
});
let out = '';
let first: Awaited<ReturnType<typeof runDriftStudy>>;

test.before(async () => {
  await tiny.pipeline();
  out = path.join(dir, 'study');
  first = await runDriftStudy(opts(out));
});

test('writes every output: rollouts, metrics.jsonl, summaries, curves, video, report', () => {
  for (const f of ['study.json', 'metrics.jsonl', 'summary.json', 'summary.csv', 'summary.md', 'report.html', 'videos/side-by-side.gif']) {
    assert.ok(fs.existsSync(path.join(out, f)), `${f} missing`);
  }
  for (const k of ['mse', 'ssim', 'psnr', 'traj', 'frechet']) for (const ext of ['svg', 'png']) assert.ok(fs.existsSync(path.join(out, 'plots', `${k}.${ext}`)), `plots/${k}.${ext}`);
  for (const c of CORRECTORS) assert.ok(fs.existsSync(path.join(out, 'rollouts', c, 'frames.npy')), c);
  // fitted here (no shipped folder beside a test checkpoint) and saved for reuse
  assert.ok(fs.existsSync(path.join(out, 'correctors', 'kalman', 'kalman.json')));
  assert.ok(fs.existsSync(path.join(out, 'correctors', 'controller', 'controller.json')));
  const png = decodePng(fs.readFileSync(path.join(out, 'plots', 'mse.png')));
  assert.ok(png.width > 200 && png.height > 100);
  const gif = decodeGif(fs.readFileSync(path.join(out, 'videos', 'side-by-side.gif')));
  assert.is(gif.T, 3 + H, 'context + generated frames');
  assert.ok(gif.W >= 6 * 32, 'truth + 4 corrector columns + copy-last (blank is not shown)');
});

test('per-frame metrics equal a float64 recomputation from the stored frames', async () => {
  const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const perFrame = lines.filter((l) => l.frame !== undefined);
  assert.is(perFrame.length, RUNS.length * N * H);
  const gen = await readNpy(path.join(out, 'rollouts', 'none', 'frames.npy'));
  const truth = await readNpy(path.join(out, 'rollouts', 'none', 'truth.npy'));
  const [, , S] = gen.shape;
  const K = 3;
  for (const { frame, rollout, mse } of perFrame.filter((l) => l.corrector === 'none')) {
    const off = ((K + frame - 1) * N + rollout) * S * S;
    let s = 0;
    for (let i = 0; i < S * S; i++) {
      const d = (gen.data as Uint8Array)[off + i] / 255 - (truth.data as Uint8Array)[off + i] / 255;
      s += d * d;
    }
    assert.ok(Math.abs(s / (S * S) - mse) < 1e-12, `frame ${frame} rollout ${rollout}: ${mse} vs ${s / (S * S)}`);
  }
  const curves = lines.filter((l) => l.metric === 'frechet-frame');
  assert.is(curves.length, (RUNS.length + 1) * 2, 'bins of 3 frames over 6, per corrector, baseline and truth');
  const fvd = lines.filter((l) => l.metric === 'fvd');
  assert.ok(fvd.every((l) => l.horizon !== 100 || l.value === null), 'a horizon beyond the rollout is skipped, not zero');
});

test('video rollouts sample with DDIM eta VIDEO_ETA (1) unless told: recorded in study.json and every rollout; the noise is drawn', async () => {
  assert.is(VIDEO_ETA, 1);
  const study = JSON.parse(fs.readFileSync(path.join(out, 'study.json'), 'utf8'));
  assert.is(study.eta, 1);
  for (const c of CORRECTORS) assert.is(JSON.parse(fs.readFileSync(path.join(out, 'rollouts', c, 'run.json'), 'utf8')).eta, 1, c);
  // eta 0 is another sampler: same seed, other frames (the default really adds noise)
  const det = path.join(dir, 'eta0');
  await runDriftStudy(opts(det, { correctors: ['none'], correctorConfig: {}, eta: 0 }));
  assert.is(JSON.parse(fs.readFileSync(path.join(det, 'rollouts', 'none', 'run.json'), 'utf8')).eta, 0);
  const a = fs.readFileSync(path.join(det, 'rollouts', 'none', 'frames.npy')), b = fs.readFileSync(path.join(out, 'rollouts', 'none', 'frames.npy'));
  assert.not.ok(a.equals(b), 'eta 0 and eta 1 gave the same frames');
});

test('summary.json and summary.csv agree and name the metrics for what they are', () => {
  const s = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  assert.match(s.metrics.frechet, /driftlab Moving-MNIST frame encoder/);
  assert.match(s.metrics.fvd, /driftlab Moving-MNIST clip encoder/);
  assert.equal(Object.keys(s.correctors), RUNS);
  assert.equal(Object.keys(s.baselines), ['copy-last', 'blank']);
  assert.ok(!s.correctors.none.baseline && s.correctors['copy-last'].baseline);
  const csv = fs.readFileSync(path.join(out, 'summary.csv'), 'utf8').trim().split('\n');
  const row = csv.find((l) => l.startsWith(`kalman,${H},mse,`))!;
  assert.ok(row, 'a kalman row at the last frame');
  assert.ok(Math.abs(Number(row.split(',')[3]) - s.correctors.kalman.at[H].mse.mean) < 1e-12);
  assert.match(fs.readFileSync(path.join(out, 'report.html'), 'utf8'), /not comparable with I3D/);
});

test('baselines: copy-last repeats the last real context frame, blank is black, both scored like rollouts', async () => {
  const truth = await readNpy(path.join(out, 'rollouts', 'none', 'truth.npy'));
  const [T, , S] = truth.shape, K = 3, P = N * S * S;
  const t8 = truth.data as Uint8Array;
  const copy = (await readNpy(path.join(out, 'baselines', 'copy-last', 'frames.npy'))).data as Uint8Array;
  const blank = (await readNpy(path.join(out, 'baselines', 'blank', 'frames.npy'))).data as Uint8Array;
  assert.is(copy.length, T * P);
  for (let t = 0; t < T; t++) for (let i = 0; i < P; i++) {
    const want = t < K ? t8[t * P + i] : t8[(K - 1) * P + i];
    if (copy[t * P + i] !== want) assert.unreachable(`copy-last frame ${t} value ${i}: ${copy[t * P + i]} vs ${want}`);
    if (blank[t * P + i] !== (t < K ? t8[t * P + i] : 0)) assert.unreachable(`blank frame ${t} value ${i}`);
  }
  // the baseline's MSE at frame k: recomputed from truth alone
  const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  for (const l of lines.filter((l) => l.corrector === 'blank' && l.frame !== undefined)) {
    const off = ((K + l.frame - 1) * N + l.rollout) * S * S;
    let q = 0;
    for (let i = 0; i < S * S; i++) q += (t8[off + i] / 255) ** 2;
    assert.ok(Math.abs(q / (S * S) - l.mse) < 1e-12, 'blank MSE = mean square of the truth');
  }
  assert.match(first.table, /\| copy-last \(baseline\) \|/);
  assert.match(first.table, /\| blank \(baseline\) \|/);
});

test('tracking horizon: first frame whose mean trajectory error over rollouts exceeds the threshold', () => {
  const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.frame !== undefined);
  const s = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  assert.is(s.trackThresholdPx, 8);
  for (const name of RUNS) {
    let want: number | null = null;
    for (let k = 1; k <= H && want === null; k++) {
      const v = lines.filter((l) => l.corrector === name && l.frame === k).map((l) => l.traj);
      assert.is(v.length, N);
      if (v.reduce((a, b) => a + b, 0) / N > 8) want = k;
    }
    assert.is(s.correctors[name].trackingHorizon, want, name);
  }
  // blank frames hold no digits: tracking is lost at frame 1
  assert.is(s.correctors.blank.trackingHorizon, 1);
  assert.match(first.table, /tracking horizon \(traj > 8 px\)/);
  const csv = fs.readFileSync(path.join(out, 'summary.csv'), 'utf8');
  assert.match(csv, /\nblank,,tracking-horizon-8px,1,/);
});

test('--resume reuses finished rollouts and gives the same numbers', async () => {
  const before = fs.statSync(path.join(out, 'rollouts', 'none', 'frames.npy')).mtimeMs;
  const again = await runDriftStudy(opts(out, { resume: true }));
  assert.is(fs.statSync(path.join(out, 'rollouts', 'none', 'frames.npy')).mtimeMs, before);
  assert.equal(again.summary.correctors.none.at, first.summary.correctors.none.at);
  assert.is(again.table, first.table);
});

test('the report renders in headless Chromium with every plot and video present', async () => {
  if (!findChromium()) {
    if (process.env.CI) assert.unreachable('chromium not found (.ci/run installs it)');
    console.log('  (skipped: no chromium on this machine)');
    return;
  }
  const r = await checkRender(path.join(out, 'report.html'));
  assert.is(r.images.bad.length, 0, `broken images: ${r.images.bad.join(', ')}`);
  assert.is(r.svgs.bad.length, 0, `empty svgs: ${r.svgs.bad.join(', ')}`);
  assert.equal(r.charts.bad, [], `charts not drawn: ${r.raw}`);
  assert.ok(r.images.ok + r.svgs.ok + r.charts.ok >= 5, 'five curves at least');
  const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
  for (const id of ['fig-mse', 'fig-ssim', 'fig-traj', 'fig-frechet', 'vid-side-by-side']) assert.ok(html.includes(`id="${id}"`), id);
});

test('bad input: unknown corrector, duplicates, a foreign folder, an image checkpoint', async () => {
  await rejectsDriftlab(runDriftStudy(opts(path.join(dir, 'bad1'), { correctors: ['none', 'nope'] })), /unknown corrector 'nope'/);
  await rejectsDriftlab(runDriftStudy(opts(path.join(dir, 'bad2'), { correctors: ['none', 'none'] })), /twice/);
  await rejectsDriftlab(runDriftStudy(opts(out)), /already holds a drift study.*--resume/);
  await rejectsDriftlab(runDriftStudy(opts(path.join(dir, 'bad3'), { correctors: ['none', 'copy-last'] })), /'copy-last' is a baseline/);
  for (const eta of [-0.1, 1.5, NaN]) await rejectsDriftlab(runDriftStudy(opts(path.join(dir, `bad-eta${eta}`), { correctors: ['none'], correctorConfig: {}, eta })), /--eta must be a number in \[0, 1\]/);
  assert.not.ok(fs.existsSync(path.join(dir, 'bad3')), 'nothing written');
});

test.run();
