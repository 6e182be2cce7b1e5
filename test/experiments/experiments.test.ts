/** Each experiment runs end to end on tiny settings and writes its results folder. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureWasm } from '../helpers/backend.js';
import { tempDir } from '../helpers/common.js';
import { guidanceSweep } from '../../experiments/guidance-sweep.js';
import { scheduleAblation } from '../../experiments/schedule-ablation.js';
import { getPreset } from '../../src/diffusion/presets.js';
import { train } from '../../src/diffusion/train.js';
import { loadBundledMnist } from '../../datasets/mnist/index.js';

const root = tempDir('driftlab-exp-');

test('schedule-ablation (tiny): two trainings, FID per schedule and step count, plot', async () => {
  await ensureWasm();
  const r = await scheduleAblation({ preset: 'mnist-tiny', trainSteps: 3, stepCounts: [2, 4], n: 20, guidance: 2, seed: 1, workers: 1, backend: 'wasm', engine: 'tfjs', root, quiet: true });
  assert.is(r.rows.length, 4);
  assert.ok(r.rows.every((row) => Number.isFinite(row.fid as number) && (row.fid as number) >= 0));
  for (const f of ['meta.json', 'results.json', 'table.md', 'fid-vs-steps.svg', 'fid-vs-steps.png', 'ckpt-linear/config.json', 'ckpt-cosine/config.json']) assert.ok(fs.existsSync(path.join(r.dir, f)), f);
  const meta = JSON.parse(fs.readFileSync(path.join(r.dir, 'meta.json'), 'utf8'));
  assert.is(meta.seed, 1);
  assert.ok(meta.versions.node && meta.versions.tfjs);
  assert.is(JSON.parse(fs.readFileSync(path.join(r.dir, 'ckpt-cosine', 'config.json'), 'utf8')).schedule.kind, 'cosine');

  // --resume after a kill: the lost row is recomputed to the same value, finished rows and
  // trainings are reused (a marked row keeps its mark), and a changed setting is refused
  const opts = { preset: 'mnist-tiny', trainSteps: 3, stepCounts: [2, 4], n: 20, guidance: 2, seed: 1, workers: 1, backend: 'wasm' as const, engine: 'tfjs' as const, root, quiet: true, resume: r.dir };
  const rowsFile = path.join(r.dir, 'rows.json');
  const saved = JSON.parse(fs.readFileSync(rowsFile, 'utf8'));
  assert.is(saved.n, 20); assert.is(saved.guidance, 2);
  const lost = saved.rows.find((x: any) => x.schedule === 'cosine' && x.steps === 4);
  const kept = saved.rows.filter((x: any) => x !== lost).map((x: any) => (x.schedule === 'linear' && x.steps === 2 ? { ...x, fid: 12345 } : x));
  fs.writeFileSync(rowsFile, JSON.stringify({ ...saved, rows: kept }));
  const logs: string[] = [];
  const again = await scheduleAblation({ ...opts, log: (l) => logs.push(l) });
  assert.is(again.dir, r.dir);
  assert.ok(logs.some((l) => l.startsWith('linear: trained earlier')) && logs.some((l) => l.startsWith('cosine: trained earlier')), logs.join('\n'));
  assert.equal(again.rows.map((x) => [x.schedule, x.steps]), [['linear', 2], ['cosine', 2], ['linear', 4], ['cosine', 4]]);
  assert.is(again.rows[0].fid, 12345);
  assert.is(again.rows[3].fid, lost.fid);
  let refused = '';
  try { await scheduleAblation({ ...opts, n: 30 }); } catch (e) { refused = (e as Error).message; }
  assert.match(refused, /FID rows used n = 20, guidance 2, not n = 30, guidance 2/);
  refused = '';
  try { await scheduleAblation({ ...opts, trainSteps: 4 }); } catch (e) { refused = (e as Error).message; }
  assert.match(refused, /ran with trainSteps = 3, not 4/);
});

test('guidance-sweep (tiny): FID and accuracy per scale, plots', async () => {
  await ensureWasm();
  const p = getPreset('mnist-tiny');
  p.train.steps = 3;
  const ck = path.join(root, 'tiny');
  await train({ preset: p, data: loadBundledMnist(), out: ck, workers: 1, backend: 'wasm', quiet: true });
  const r = await guidanceSweep({ ckpt: ck, scales: [1, 3], n: 20, steps: 2, seed: 0, engine: 'tfjs', root });
  assert.equal(r.rows.map((x) => x.guidance), [1, 3]);
  assert.ok(r.rows.every((x) => x.accuracy >= 0 && x.accuracy <= 1 && Number.isFinite(x.fid)));
  for (const f of ['results.json', 'table.md', 'fid-vs-guidance.png', 'accuracy-vs-guidance.svg']) assert.ok(fs.existsSync(path.join(r.dir, f)), f);
});

test.run();
