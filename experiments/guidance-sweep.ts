/**
 * guidance-sweep: classifier-free guidance scale against FID (driftlab MNIST classifier
 * features) and the classifier accuracy of class-conditional samples, for one checkpoint.
 * Writes results.json, table.md and plots (SVG + PNG) to results/guidance-sweep/<run-id>/.
 */
import { loadClassifier } from '../src/eval/features/mnist-classifier.js';
import { MNIST_FID_NAME } from '../src/eval/features/mnist-classifier.js';
import { evaluateCheckpoint, prepareReference } from '../src/eval/fid.js';
import { writeChart } from '../src/plot/chart.js';
import { EngineChoice } from '../src/engine/select.js';
import { makeRunDir, markdownTable } from './common.js';
import * as path from 'node:path';

export interface GuidanceSweepOptions {
  ckpt: string;
  scales: number[];
  n: number;
  steps: number;
  seed: number;
  engine: EngineChoice;
  root: string;
  log?: (line: string) => void;
}

export async function guidanceSweep(o: GuidanceSweepOptions): Promise<{ dir: string; rows: Record<string, number>[] }> {
  const run = await makeRunDir(o.root, 'guidance-sweep', o.seed, o);
  const clf = await loadClassifier();
  const rows: Record<string, number>[] = [];
  try {
    const ref = prepareReference(clf, 'all', o.seed);
    for (const w of o.scales) {
      const r = await evaluateCheckpoint(clf, { ckpt: o.ckpt, n: o.n, batch: Math.min(o.n, 100), sampler: 'ddim', steps: o.steps, eta: 0, guidance: w, seed: o.seed, weights: 'ema', pool: 'all', engine: o.engine }, ref);
      rows.push({ guidance: w, fid: r.fid, realBaseline: r.baseline, accuracy: r.accuracy ?? NaN, confidence: r.confidence, seconds: r.seconds.sampling });
      o.log?.(`guidance ${w}: FID ${r.fid.toFixed(2)} (baseline ${r.baseline.toFixed(2)}), accuracy ${((r.accuracy ?? NaN) * 100).toFixed(1)}%`);
    }
  } finally {
    clf.dispose();
  }
  await run.write('results.json', JSON.stringify({ metric: MNIST_FID_NAME, n: o.n, steps: o.steps, rows }, null, 2) + '\n');
  await run.write('table.md', `${MNIST_FID_NAME}, DDIM ${o.steps} steps, ${o.n} samples per scale\n\n` + markdownTable(rows));
  const x = rows.map((r) => r.guidance);
  writeChart(path.join(run.dir, 'fid-vs-guidance'), {
    title: 'FID (driftlab MNIST features) vs guidance scale', xlabel: 'guidance scale w', ylabel: 'FID',
    series: [{ name: 'samples', x, y: rows.map((r) => r.fid) }, { name: 'real vs real baseline', x, y: rows.map((r) => r.realBaseline) }],
  });
  writeChart(path.join(run.dir, 'accuracy-vs-guidance'), {
    title: 'classifier accuracy of class-conditional samples', xlabel: 'guidance scale w', ylabel: 'accuracy',
    series: [{ name: 'accuracy', x, y: rows.map((r) => r.accuracy) }],
  });
  return { dir: run.dir, rows };
}
