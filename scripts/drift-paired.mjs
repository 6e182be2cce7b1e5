#!/usr/bin/env node
// Two sampler or model settings compared rollout by rollout, and the pooled curves of each.
//
//   node scripts/drift-paired.mjs [--corrector none] [--corrector-b NAME] [--threshold 8] A_OUT,A_OUT,... B_OUT,B_OUT,...
//
// A_OUT / B_OUT: folders written by `driftlab drift --out` (metrics.jsonl), the i-th of A and of B run with
// the same --seed (the same contexts and truths), e.g. eta 0 and eta 1. For each setting it prints the mean
// trajectory error over all rollouts at frames 1, 5, 10, 15, 20, 25, 30 (± s.e.), the median and the count over
// the threshold at frame 10, and the pooled tracking horizon (the first frame whose mean passes the
// threshold). Then the paired difference B − A per frame: mean ± s.e. over rollouts, and how often B is better.
// --corrector-b compares two correctors of the same seeds (B's rows are read for it; A's for --corrector).
import * as fs from 'node:fs';
import * as path from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(`--${name}`); if (i < 0) return dflt; const v = args[i + 1]; args.splice(i, 2); return v; };
const corrector = opt('corrector', 'none'), correctorB = opt('corrector-b', corrector), threshold = Number(opt('threshold', 8));
if (args.length !== 2) { console.error('usage: node scripts/drift-paired.mjs [--corrector none] [--threshold 8] A_OUT,... B_OUT,...'); process.exit(2); }
const [A, B] = args.map((s) => s.split(',').filter(Boolean));
if (A.length !== B.length) { console.error(`drift-paired: ${A.length} A folders against ${B.length} B folders; pair them by seed`); process.exit(2); }

function load(d, name) {
  const f = path.join(d, 'metrics.jsonl');
  if (!fs.existsSync(f)) { console.error(`drift-paired: ${f} not found (a driftlab drift --out folder?)`); process.exit(2); }
  const m = new Map();
  for (const l of fs.readFileSync(f, 'utf8').trim().split('\n').map((x) => JSON.parse(x))) {
    if (l.corrector === name && typeof l.traj === 'number') m.set(`${l.rollout}/${l.frame}`, l);
  }
  if (!m.size) { console.error(`drift-paired: ${f} has no per-frame rows for corrector '${name}'`); process.exit(2); }
  return m;
}
const stat = (a) => { const m = a.reduce((s, v) => s + v, 0) / a.length; const sd = Math.sqrt(a.reduce((s, v) => s + (v - m) ** 2, 0) / Math.max(1, a.length - 1)); return { m, se: sd / Math.sqrt(a.length) }; };
const sets = [A.map((d) => load(d, corrector)), B.map((d) => load(d, correctorB))];
const FR = [1, 5, 10, 15, 20, 25, 30];
sets.forEach((runs, s) => {
  const by = {};
  for (const r of runs) for (const l of r.values()) (by[l.frame] ??= []).push(l.traj);
  const frames = Object.keys(by).map(Number).sort((a, b) => a - b);
  const horizon = frames.find((f) => stat(by[f]).m > threshold);
  const at10 = (by[10] ?? []).slice().sort((a, b) => a - b);
  console.log(`${s ? 'B' : 'A'} (${runs.reduce((n, r) => n + new Set([...r.values()].map((l) => l.rollout)).size, 0)} rollouts): ` +
    FR.filter((f) => by[f]).map((f) => `@${f} ${stat(by[f]).m.toFixed(2)}±${stat(by[f]).se.toFixed(2)}`).join('  ') +
    (at10.length ? `  median@10 ${at10[Math.floor(at10.length / 2)].toFixed(2)}  over ${threshold} px @10: ${at10.filter((v) => v > threshold).length}` : '') +
    `  pooled horizon ${horizon ?? `> ${frames.at(-1)}`}`);
});
for (const f of FR) {
  const d = [];
  sets[1].forEach((rb, i) => { for (const l of rb.values()) if (l.frame === f) { const a = sets[0][i].get(`${l.rollout}/${f}`); if (a) d.push(l.traj - a.traj); } });
  if (!d.length) continue;
  const { m, se } = stat(d);
  console.log(`frame ${f}: B − A ${m.toFixed(2)} ± ${se.toFixed(2)} px over ${d.length} pairs, B better in ${d.filter((v) => v < 0).length}`);
}
