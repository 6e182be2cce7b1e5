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
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { truthTrajectories } = await import(path.join(root, 'dist/src/drift/trajectory-truth.js'));
const argv = process.argv.slice(2);
const flag = (n, d) => { const i = argv.indexOf(`--${n}`); if (i < 0) return d; const v = argv[i + 1]; argv.splice(i, 2); return v; };
const frame = Number(flag('frame', '10')), near = Number(flag('near', '10')), corrector = flag('corrector', 'none');
if (!argv.length || !(frame >= 1) || !(near > 0)) {
  console.error('usage: node scripts/drift-by-overlap.mjs [--frame 10] [--near 10] [--corrector none] DRIFT_OUT...');
  process.exit(2);
}
const rows = [];
for (const d of argv) {
  const runFile = path.join(d, 'rollouts', corrector, 'run.json'), metricsFile = path.join(d, 'metrics.jsonl');
  if (!fs.existsSync(runFile) || !fs.existsSync(metricsFile)) { console.error(`drift-by-overlap: ${d} has no ${path.join('rollouts', corrector, 'run.json')} or metrics.jsonl (a driftlab drift --out folder?)`); process.exit(1); }
  const run = JSON.parse(fs.readFileSync(runFile, 'utf8'));
  if (run.data.digits !== 2) { console.error(`drift-by-overlap: ${d} has ${run.data.digits} digits per clip; the split needs 2`); process.exit(1); }
  const K = run.context;
  const truth = truthTrajectories(run, K);
  const m = fs.readFileSync(metricsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.corrector === corrector && l.frame === frame && typeof l.traj === 'number');
  truth.forEach((t, r) => {
    const [a, b] = t.positions[K - 1];
    const e = m.find((l) => l.rollout === r);
    if (e) rows.push({ dir: path.basename(d), rollout: r, dist: Math.hypot(a[0] - b[0], a[1] - b[1]), err: e.traj });
  });
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
