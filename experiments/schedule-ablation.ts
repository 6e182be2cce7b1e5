/**
 * schedule-ablation: train with the linear and the cosine schedule, everything else fixed, and
 * compare FID (driftlab MNIST classifier features) at several DDIM step counts.
 * Writes results.json, table.md and a plot of FID against steps (both lines) to
 * results/schedule-ablation/<run-id>/ (the two checkpoints are kept there too).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BackendName } from '../src/backend.js';
import { getPreset } from '../src/diffusion/presets.js';
import { train } from '../src/diffusion/train.js';
import { loadBundledMnist } from '../datasets/mnist/index.js';
import { loadClassifier, MNIST_FID_NAME } from '../src/eval/features/mnist-classifier.js';
import { evaluateCheckpoint, prepareReference } from '../src/eval/fid.js';
import { writeChart } from '../src/plot/chart.js';
import { EngineChoice } from '../src/engine/select.js';
import type { TrainEngineChoice } from '../src/diffusion/train-engine.js';
import { Progress } from '../src/util/progress.js';
import { DriftlabError } from '../src/util/errors.js';
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
  /** what trains each schedule (default auto: onnx where onnxruntime-node loads) */
  trainEngine?: TrainEngineChoice;
  trainThreads?: number;
  root: string;
  quiet?: boolean;
  log?: (line: string) => void;
  /** an earlier run folder of this experiment: finished training and FID rows are reused */
  resume?: string;
}

type Row = { schedule: 'linear' | 'cosine'; steps: number; fid: number; realBaseline: number; accuracy: number };

function readJson<T>(file: string, fallback: T): T {
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as T) : fallback;
}

export async function scheduleAblation(o: ScheduleAblationOptions) {
  const run = await makeRunDir(o.root, 'schedule-ablation', o.seed, { ...o, log: undefined }, o.resume, ['preset', 'trainSteps', 'minutes']);
  // training.json and rows.json are rewritten (atomically) after every finished part, so a killed
  // run loses at most one training interval or one FID row when continued with --resume
  const training = readJson<Record<string, { steps: number; seconds: number; lastLoss: number }>>(path.join(run.dir, 'training.json'), {});
  const data = loadBundledMnist();
  const ckpts: Record<string, string> = {};
  for (const kind of ['linear', 'cosine'] as const) {
    ckpts[kind] = path.join(run.dir, `ckpt-${kind}`);
    if (training[kind] && training[kind].steps >= o.trainSteps) {
      o.log?.(`${kind}: trained earlier (${training[kind].steps} steps), reused`);
      continue;
    }
    const p = getPreset(o.preset);
    p.schedule.kind = kind;
    p.train.steps = o.trainSteps;
    p.train.seed = o.seed;
    const before = training[kind]?.seconds ?? 0;
    const r = await train({ preset: p, data, out: ckpts[kind], workers: o.workers, backend: o.backend, minutes: o.minutes, quiet: o.quiet, resume: true, engine: o.trainEngine ?? 'auto', threads: o.trainThreads });
    training[kind] = { steps: r.steps, seconds: before + r.seconds, lastLoss: r.lastLoss };
    await run.write('training.json', JSON.stringify(training, null, 2) + '\n');
    o.log?.(`${kind}: trained ${r.steps} steps in ${r.seconds.toFixed(0)} s`);
  }
  // the FID rows depend on n and guidance: a resume may change them only while no row is done
  const saved = readJson<{ n: number; guidance: number; rows: Row[] }>(path.join(run.dir, 'rows.json'), { n: o.n, guidance: o.guidance, rows: [] });
  if (saved.rows.length && (saved.n !== o.n || saved.guidance !== o.guidance)) {
    throw new DriftlabError(`--resume ${run.dir}: its FID rows used n = ${saved.n}, guidance ${saved.guidance}, not n = ${o.n}, guidance ${o.guidance}; pass the same settings or start a new run`);
  }
  const rows = saved.rows;
  const pending = o.stepCounts.flatMap((steps) => (['linear', 'cosine'] as const).map((kind) => ({ kind, steps })))
    .filter(({ kind, steps }) => !rows.some((r) => r.schedule === kind && r.steps === steps));
  if (pending.length) {
    const clf = await loadClassifier();
    // one bar over every pending row, in denoising steps (a 1000-step row is 100x a 10-step one)
    const progress = o.quiet ? null : new Progress({ total: pending.reduce((a, r) => a + r.steps * o.n, 0), label: 'FID sampling', unit: 'img-steps' });
    // guidance applies to class-conditional presets only
    const g = getPreset(o.preset).model.numClasses > 0 ? o.guidance : 1;
    try {
      const ref = prepareReference(clf, 'all', o.seed);
      for (const { kind, steps } of pending) {
        let before = 0;
        const onBatch = progress ? (done: number) => { progress.tick((done - before) * steps, { schedule: kind, steps }); before = done; } : undefined;
        const r = await evaluateCheckpoint(clf, { ckpt: ckpts[kind], n: o.n, batch: Math.min(o.n, 100), sampler: 'ddim', steps, eta: 0, guidance: g, seed: o.seed, weights: 'ema', pool: 'all', engine: o.engine, onBatch }, ref);
        rows.push({ schedule: kind, steps, fid: r.fid, realBaseline: r.baseline, accuracy: r.accuracy ?? NaN });
        await run.write('rows.json', JSON.stringify({ n: o.n, guidance: o.guidance, rows }, null, 2) + '\n');
        o.log?.(`${kind}, ${steps} steps: FID ${r.fid.toFixed(2)}`);
      }
    } finally {
      clf.dispose();
    }
  }
  // table order: by step count, linear before cosine, whatever order the parts finished in
  const order = (r: Row) => o.stepCounts.indexOf(r.steps) * 2 + (r.schedule === 'cosine' ? 1 : 0);
  rows.sort((a, b) => order(a) - order(b));
  const shown = rows.filter((r) => o.stepCounts.includes(r.steps));
  await run.write('results.json', JSON.stringify({ metric: MNIST_FID_NAME, training, n: o.n, guidance: o.guidance, sampler: 'ddim', eta: 0, clipX0: true, rows: shown }, null, 2) + '\n');
  await run.write('table.md', `${MNIST_FID_NAME}, ${o.n} samples, DDIM (eta 0, x0 clipped), guidance ${o.guidance}\n\n` + markdownTable(shown as unknown as Record<string, number | string>[]));
  const line = (kind: string) => ({ name: kind, x: o.stepCounts, y: o.stepCounts.map((s) => shown.find((r) => r.schedule === kind && r.steps === s)!.fid as number) });
  writeChart(path.join(run.dir, 'fid-vs-steps'), {
    title: 'FID (driftlab MNIST features) vs sampling steps', xlabel: 'DDIM steps', ylabel: 'FID', logX: true,
    series: [line('linear'), line('cosine')],
  });
  return { dir: run.dir, rows: shown, training };
}
