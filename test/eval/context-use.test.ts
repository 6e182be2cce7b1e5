/**
 * The context-use check (#12) can tell a model that conditions on its past from one that cannot:
 *  - a tiny concat-conditioned model trained ~100 steps on STATIC clips (the target equals the
 *    last context frame, so only the context can reveal it at high noise) scores other/true >> 1;
 *  - a model that structurally cannot see its context (no temporal layers, attention conditioning:
 *    every frame is denoised alone) scores exactly 1, whatever its weights;
 * plus the in-training log, the CLI's JSON and bad input.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureWasm } from '../helpers/backend.js';
import { rejectsDriftlab, tempDir } from '../helpers/common.js';
import { loadPipeline, type Pipeline } from '../../src/diffusion/pipeline.js';
import { contextUse, formatContextUse } from '../../src/eval/context-use.js';
import { getVideoPreset } from '../../src/video/presets.js';
import { trainVideo } from '../../src/video/train-video.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.js');
const dir = tempDir('driftlab-context-use-');
const TS = [300, 700, 900];
const STEPS = 100;

function staticPreset(steps: number, conditioning: 'concat' | 'attention') {
  const p = getVideoPreset('mmnist-tiny');
  p.model.video = { ...p.model.video!, frames: 4, contextFrames: 3, temporal: [false, false], temporalMid: false, conditioning };
  p.objective = { ...p.objective, prediction: 'v' };
  p.data = { ...p.data, speedMin: 0, speedMax: 0 }; // static digits: target = every context frame
  p.train = { ...p.train, steps, batchSize: 8, checkpointEvery: steps, lr: 2e-3 };
  return p;
}

let seeing: Pipeline, blind: Pipeline;
const seeingDir = path.join(dir, 'concat'), blindDir = path.join(dir, 'blind');

test.before(async () => {
  await ensureWasm();
  await trainVideo({ preset: staticPreset(STEPS, 'concat'), out: seeingDir, workers: 1, backend: 'wasm', quiet: true });
  await trainVideo({ preset: staticPreset(2, 'attention'), out: blindDir, workers: 1, backend: 'wasm', quiet: true });
  seeing = await loadPipeline(seeingDir, 'ema', { engine: 'tfjs' });
  blind = await loadPipeline(blindDir, 'ema', { engine: 'tfjs' });
});

test.after(async () => {
  await seeing?.dispose();
  await blind?.dispose();
});

const check = (p: Pipeline, windows = 8) => contextUse(p.net, p.config.model, p.schedule, p.config.objective.prediction, (p.config.training as any).data, { windows, ts: TS, seed: 1 });

test(`a model trained ${STEPS} steps on static clips uses its context: other/true >= 3 and blank/true >= 2 at every t`, async () => {
  const r = await check(seeing);
  assert.is(r.copyLast, 0, 'static clips: copy-last is exact');
  r.t.forEach((t, i) => {
    assert.ok(r.ratioOther[i] >= 3, `t=${t}: other/true ${r.ratioOther[i]}\n${formatContextUse(r)}`);
    assert.ok(r.ratioBlank[i] >= 2, `t=${t}: blank/true ${r.ratioBlank[i]}\n${formatContextUse(r)}`);
    assert.ok(Math.abs(r.ratioOther[i] - r.mseOther[i] / r.mseTrue[i]) < 1e-12);
  });
});

test('a model that cannot see its context scores exactly 1 (the check has no bias of its own)', async () => {
  const r = await check(blind);
  r.t.forEach((t, i) => {
    assert.ok(Math.abs(r.ratioOther[i] - 1) < 1e-6, `t=${t}: other/true ${r.ratioOther[i]}`);
    assert.ok(Math.abs(r.ratioBlank[i] - 1) < 1e-6, `t=${t}: blank/true ${r.ratioBlank[i]}`);
  });
});

test('train-video logs the check at every checkpoint (context-use.jsonl)', () => {
  const lines = fs.readFileSync(path.join(seeingDir, 'context-use.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(lines.length >= 1);
  const last = lines.at(-1);
  assert.is(last.step, STEPS);
  assert.equal(last.t, [300, 700]);
  assert.ok(last.ratioOther.every((x: number) => x > 2), `logged ratios ${last.ratioOther}`);
});

test('driftlab eval context-use --json prints the same numbers; bad input is one error line', async () => {
  const r = spawnSync(process.execPath, [CLI, 'eval', 'context-use', '--ckpt', seeingDir, '--windows', '8', '--t', TS.join(','), '--seed', '1', '--engine', 'tfjs', '--json'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  const lib = await check(seeing);
  assert.equal(j.t, TS);
  j.ratioOther.forEach((x: number, i: number) => assert.ok(Math.abs(x - lib.ratioOther[i]) < 1e-9 * lib.ratioOther[i], `${x} vs ${lib.ratioOther[i]}`));
  const bad = spawnSync(process.execPath, [CLI, 'eval', 'context-use', '--ckpt', seeingDir, '--windows', '1'], { encoding: 'utf8' });
  assert.ok(bad.status !== 0);
  const errs = bad.stderr.split('\n').filter((l) => l.startsWith('driftlab: error:'));
  assert.is(errs.length, 1, bad.stderr);
  assert.match(errs[0], /--windows must be an integer >= 2/);
  await rejectsDriftlab(check(seeing, 1), /--windows/);
});

test.run();
