/**
 * schedule-ablation: train with the linear and the cosine schedule, everything else fixed, and
 * compare FID (driftlab MNIST classifier features) at several DDIM step counts.
 * Writes results.json, table.md and a plot of FID against steps (both lines) to
 * results/schedule-ablation/<run-id>/ (the two checkpoints are kept there too).
 */
import * as path from 'node:path';
import { BackendName } from '../src/backend.js';
import { getPreset } from '../src/diffusion/presets.js';
import { train } from '../src/diffusion/train.js';
import { loadBundledMnist } from '../datasets/mnist/index.js';
import { loadClassifier, MNIST_FID_NAME } from '../src/eval/features/mnist-classifier.js';
import { evaluateCheckpoint, prepareReference } from '../src/eval/fid.js';
import { writeChart } from '../src/plot/chart.js';
import { EngineChoice } from '../src/engine/select.js';
import { makeRunDir, markdownTable } from './common.js';

export interface ScheduleAblationOptions {
  preset: string;
  /** training budget per schedule: steps (and/or minutes) */
  trainSteps: number;
  minutes?: number;
  stepCounts: number[];
  n: number;
  guidance: number;
  seed: number;
  workers: number;
  backend: BackendName;
  engine: EngineChoice;
  root: string;
  quiet?: boolean;
  log?: (line: string) => void;
}

export async function scheduleAblation(o: ScheduleAblationOptions) {
  const run = await makeRunDir(o.root, 'schedule-ablation', o.seed, o);
  const data = loadBundledMnist();
  const ckpts: Record<string, string> = {};
  const training: Record<string, unknown> = {};
  for (const kind of ['linear', 'cosine'] as const) {
    const p = getPreset(o.preset);
    p.schedule.kind = kind;
    p.train.steps = o.trainSteps;
    p.train.seed = o.seed;
    ckpts[kind] = path.join(run.dir, `ckpt-${kind}`);
    const r = await train({ preset: p, data, out: ckpts[kind], workers: o.workers, backend: o.backend, minutes: o.minutes, quiet: o.quiet });
    training[kind] = { steps: r.steps, seconds: r.seconds, lastLoss: r.lastLoss };
    o.log?.(`${kind}: trained ${r.steps} steps in ${r.seconds.toFixed(0)} s`);
  }
  const clf = await loadClassifier();
  const rows: Record<string, number | string>[] = [];
  try {
    const ref = prepareReference(clf, 'all', o.seed);
    for (const steps of o.stepCounts) for (const kind of ['linear', 'cosine'] as const) {
      const g = getPreset(o.preset).model.numClasses > 0 ? o.guidance : 1;
      const r = await evaluateCheckpoint(clf, { ckpt: ckpts[kind], n: o.n, batch: Math.min(o.n, 100), sampler: 'ddim', steps, eta: 0, guidance: g, seed: o.seed, weights: 'ema', pool: 'all', engine: o.engine }, ref);
      rows.push({ schedule: kind, steps, fid: r.fid, realBaseline: r.baseline, accuracy: r.accuracy ?? NaN });
      o.log?.(`${kind}, ${steps} steps: FID ${r.fid.toFixed(2)}`);
    }
  } finally {
    clf.dispose();
  }
  await run.write('results.json', JSON.stringify({ metric: MNIST_FID_NAME, training, n: o.n, guidance: o.guidance, rows }, null, 2) + '\n');
  await run.write('table.md', `${MNIST_FID_NAME}, ${o.n} samples, DDIM, guidance ${o.guidance}\n\n` + markdownTable(rows));
  const line = (kind: string) => ({ name: kind, x: o.stepCounts, y: o.stepCounts.map((s) => rows.find((r) => r.schedule === kind && r.steps === s)!.fid as number) });
  writeChart(path.join(run.dir, 'fid-vs-steps'), {
    title: 'FID (driftlab MNIST features) vs sampling steps', xlabel: 'DDIM steps', ylabel: 'FID', logX: true,
    series: [line('linear'), line('cosine')],
  });
  return { dir: run.dir, rows, training };
}
