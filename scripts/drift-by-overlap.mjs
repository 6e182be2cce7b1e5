#!/usr/bin/env node
// Trajectory error split by how the context ends: are the two digits apart or overlapping?
//
//   node scripts/drift-by-overlap.mjs [--frame 10] [--near 10] [--corrector none] DRIFT_OUT...
//
// DRIFT_OUT: folders written by `driftlab drift --out` (metrics.jsonl, rollouts/<corrector>/run.json).
// For every rollout the simulator's truth is regenerated (the run's data and seed, test split) and
// the distance between the two digits' true top-left corners at the last context frame is taken
// (canvas px; digits are 28 px wide, so under --near px they overlap heavily). Prints one line per
// rollout and the mean error at --frame of each group, with how many rollouts pass 8 px.
//
//   node scripts/drift-by-overlap.mjs --failures [--within 7] [--near 10] [--corrector none] DRIFT_OUT...
//
// Failure mode: for every rollout, the first generated frame whose trajectory error passes 8 px and
// the frames where the true digits cross (under --near px apart); how many failures come within
// --within truth frames after (or at) a crossing, against the share of all rollout frames that do:
// if crossings did not matter, the two shares would be about equal.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { truthTrajectories } = await import(path.join(root, 'dist/src/drift/trajectory-truth.js'));
const argv = process.argv.slice(2);
const flag = (n, d) => { const i = argv.indexOf(`--${n}`); if (i < 0) return d; const v = argv[i + 1]; argv.splice(i, 2); return v; };
const failures = argv.includes('--failures');
if (failures) argv.splice(argv.indexOf('--failures'), 1);
const frame = Number(flag('frame', '10')), near = Number(flag('near', '10')), corrector = flag('corrector', 'none'), within = Number(flag('within', '7'));
if (!argv.length || !(frame >= 1) || !(near > 0) || !(Number.isInteger(within) && within >= 1)) {
  console.error('usage: node scripts/drift-by-overlap.mjs [--frame 10 | --failures [--within 7]] [--near 10] [--corrector none] DRIFT_OUT...');
  process.exit(2);
}
const THRESHOLD = 8;
const rows = [];
const fails = [];
let failSeen = 0, baseHits = 0, baseN = 0;
function failureRows(d, run, K, metricsFile) {
  const m = fs.readFileSync(metricsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.corrector === corrector && typeof l.traj === 'number');
  const H = Math.max(...m.map((l) => l.frame));
  const truth = truthTrajectories(run, K + H);
  if (!fails.length && !failSeen) console.log(`| run | rollout | first frame over ${THRESHOLD} px | crossings (generated frame k; 0 = last context frame) |\n|---|---|---|---|`);
  truth.forEach((t, r) => {
    const dist = t.positions.map(([a, b]) => Math.hypot(a[0] - b[0], a[1] - b[1]));
    const err = []; for (const l of m) if (l.rollout === r) err[l.frame] = l.traj;
    if (!err.length) return;
    failSeen++;
    // truth frame K-1+k is generated frame k; a crossing "before" frame k: any truth frame in [K-1+k-within+1, K-1+k]
    const closeBefore = (k) => dist.slice(Math.max(0, K + k - within), K + k).some((v) => v < near);
    for (let k = 1; k <= H; k++) if (err[k] !== undefined) { baseN++; if (closeBefore(k)) baseHits++; }
    let f = 0; for (let k = 1; k <= H; k++) if (err[k] > THRESHOLD) { f = k; break; }
    const cross = []; for (let k = 0; k <= H; k++) if (dist[K - 1 + k] < near) cross.push(k);
    if (f) fails.push({ nearCrossing: closeBefore(f) });
    console.log(`| ${path.basename(d)} | ${r} | ${f || `none in ${H}`} | ${cross.join(', ')} |`);
  });
}
for (const d of argv) {
  const runFile = path.join(d, 'rollouts', corrector, 'run.json'), metricsFile = path.join(d, 'metrics.jsonl');
  if (!fs.existsSync(runFile) || !fs.existsSync(metricsFile)) { console.error(`drift-by-overlap: ${d} has no ${path.join('rollouts', corrector, 'run.json')} or metrics.jsonl (a driftlab drift --out folder?)`); process.exit(1); }
  const run = JSON.parse(fs.readFileSync(runFile, 'utf8'));
  if (run.data.digits !== 2) { console.error(`drift-by-overlap: ${d} has ${run.data.digits} digits per clip; the split needs 2`); process.exit(1); }
  const K = run.context;
  if (failures) { failureRows(d, run, K, metricsFile); continue; }
  const truth = truthTrajectories(run, K);
  const m = fs.readFileSync(metricsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.corrector === corrector && l.frame === frame && typeof l.traj === 'number');
  truth.forEach((t, r) => {
    const [a, b] = t.positions[K - 1];
    const e = m.find((l) => l.rollout === r);
    if (e) rows.push({ dir: path.basename(d), rollout: r, dist: Math.hypot(a[0] - b[0], a[1] - b[1]), err: e.traj });
  });
}
if (failures) {
  const n = fails.length, hit = fails.filter((x) => x.nearCrossing).length;
  console.log(`\n${n} of ${failSeen} rollouts pass ${THRESHOLD} px; ${hit} of them (${n ? (hit / n).toFixed(2) : '-'}) within ${within} truth frames after a crossing; share of all rollout frames that are: ${(baseHits / (baseN || 1)).toFixed(2)}`);
  process.exit(0);
}
if (!rows.length) { console.error(`drift-by-overlap: no trajectory error at frame ${frame} for corrector ${corrector}`); process.exit(1); }
rows.sort((x, y) => x.dist - y.dist);
console.log(`| run | rollout | digits' distance at the last context frame (px) | traj@${frame} (px) |\n|---|---|---|---|`);
for (const x of rows) console.log(`| ${x.dir} | ${x.rollout} | ${x.dist.toFixed(1)} | ${x.err.toFixed(2)} |`);
const group = (label, keep) => {
  const v = rows.filter(keep).map((x) => x.err);
  const mean = v.reduce((s, e) => s + e, 0) / (v.length || 1);
  const se = v.length > 1 ? Math.sqrt(v.reduce((s, e) => s + (e - mean) ** 2, 0) / (v.length - 1) / v.length) : NaN;
  console.log(`${label}: ${v.length} rollouts, traj@${frame} ${mean.toFixed(2)} +- ${se.toFixed(2)} px, ${v.filter((e) => e > 8).length} over 8 px`);
};
console.log('');
group(`overlapping (< ${near} px)`, (x) => x.dist < near);
group(`apart (>= ${near} px)`, (x) => x.dist >= near);
group('all', () => true);
