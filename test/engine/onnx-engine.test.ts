/**
 * The onnx engine behind the samplers: same samples as tfjs for the same seed, engine selection,
 * no tensor leaks, and the command-line contract (one line for the engine, one warning line when
 * onnxruntime-node is missing, one error line for a corrupt .onnx file).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CHECKPOINT_FORMAT, saveCheckpoint } from '../../src/diffusion/checkpoint.js';
import { SPEC_UNET } from '../../src/diffusion/config.js';
import { UNetModel, flatLayout, joinFlat } from '../../src/diffusion/model.js';
import { DEFAULT_OBJECTIVE } from '../../src/diffusion/objective.js';
import { denoiserOf, generate, loadPipeline } from '../../src/diffusion/pipeline.js';
import { getPreset } from '../../src/diffusion/presets.js';
import { sample } from '../../src/diffusion/samplers.js';
import { DEFAULT_SCHEDULE, makeSchedule } from '../../src/diffusion/schedule.js';
import { unetParamSpecs } from '../../src/diffusion/unet.js';
import { exportOnnx } from '../../src/engine/export.js';
import { OnnxUNet } from '../../src/engine/onnx-engine.js';
import { createEngine } from '../../src/engine/select.js';
import { Rng } from '../../src/util/rng.js';
import { ensureWasm, maxAbsDiff, rejectsDriftlab } from '../helpers/backend.js';
import { once, randomParams, requireOrt } from './helpers.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.js');
const TINY = getPreset('mnist-tiny').model;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'driftlab-engine-'));
const ckpt = path.join(tmp, 'tiny');

const ready = once(async () => {
  await ensureWasm();
  await requireOrt();
  const params = joinFlat(flatLayout(unetParamSpecs(TINY)), randomParams(TINY, 21));
  await saveCheckpoint(ckpt, { config: { format: CHECKPOINT_FORMAT, model: TINY, schedule: { ...DEFAULT_SCHEDULE }, objective: { ...DEFAULT_OBJECTIVE } }, params, ema: params });
});
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('same seed, same samples on both engines: mnist-tiny, DDIM 5 steps, guidance 2, labels incl. null', async () => {
  await ready();
  const tfjs = await loadPipeline(ckpt, 'ema', { engine: 'tfjs' });
  const onnx = await loadPipeline(ckpt, 'ema', { engine: 'onnx', threads: 1 });
  try {
    assert.is(tfjs.engine.name, 'tfjs');
    assert.is(onnx.engine.name, 'onnx');
    assert.match(onnx.engine.line, /^engine onnxruntime-node \d+\.\d+\.\d+ · cpu, 1 intra-op thread/);
    const opts = { n: 4, batch: 3, sampler: 'ddim' as const, steps: 5, guidance: 2, labels: Int32Array.of(3, 10, 7, 1), clipX0: true, seed: 5 };
    const before = tf.memory().numTensors;
    const a = await generate(tfjs, opts);
    const b = await generate(onnx, opts);
    assert.is(tf.memory().numTensors, before, 'generate leaked tensors');
    const d = maxAbsDiff(a.images, b.images);
    assert.ok(d < 1e-4, `max |onnx - tfjs| over the samples = ${d}`);
    assert.ok(maxAbsDiff(a.images, new Float32Array(a.images.length)) > 0.1, 'samples are not blank');
  } finally {
    await tfjs.dispose();
    await onnx.dispose();
  }
});

test('same seed, same samples on both engines: SPEC_UNET, DDIM 5 steps with eta 1 (noise from driftlab)', async () => {
  await ready();
  const model = new UNetModel(SPEC_UNET, randomParams(SPEC_UNET, 22));
  const onnx = await createEngine('onnx', model, denoiserOf(model), { threads: 1 });
  try {
    const s = makeSchedule(DEFAULT_SCHEDULE);
    const run = async (net: typeof onnx.net) => {
      const x = await sample(net, s, 'epsilon', [2, 28, 28, 1], { sampler: 'ddim', steps: 5, eta: 1, clipX0: true, rng: new Rng(9) });
      const v = x.dataSync() as Float32Array;
      x.dispose();
      return v;
    };
    const a = await run(denoiserOf(model)), b = await run(onnx.net);
    const d = maxAbsDiff(a, b);
    assert.ok(d < 1e-4, `max |onnx - tfjs| = ${d}`);
  } finally {
    await onnx.dispose();
    model.dispose();
  }
});

test('engine choice: auto picks onnx here, tfjs stays tfjs, an unknown name is refused', async () => {
  await ready();
  const model = new UNetModel(TINY, 1);
  try {
    const warnings: string[] = [];
    const auto = await createEngine('auto', model, denoiserOf(model), { threads: 1, warn: (l) => warnings.push(l) });
    assert.is(auto.name, 'onnx');
    assert.equal(warnings, []);
    await auto.dispose();
    const t = await createEngine('tfjs', model, denoiserOf(model));
    assert.is(t.name, 'tfjs');
    assert.match(t.line, /^engine tfjs .* backend wasm/);
    await rejectsDriftlab(createEngine('torch' as any, model, denoiserOf(model)), /unknown engine 'torch'; choose one of auto, tfjs, onnx/);
  } finally {
    model.dispose();
  }
});

test('corrupt, foreign or mismatched .onnx files: one clear DriftlabError line', async () => {
  await ready();
  const good = exportOnnx(TINY, randomParams(TINY, 2)).bytes;
  const file = (name: string, bytes: Uint8Array) => { const f = path.join(tmp, name); fs.writeFileSync(f, bytes); return f; };
  await rejectsDriftlab(OnnxUNet.create(file('cut.onnx', good.subarray(0, 5000)), TINY), /cut\.onnx is not a valid ONNX model \(.*\); re-create it with 'driftlab export'$/);
  await rejectsDriftlab(OnnxUNet.create(file('noise.onnx', new Rng(1).normals(1000).map((v) => v * 1e9) as any)), /noise\.onnx is not a (valid|usable) ONNX model/);
  await rejectsDriftlab(OnnxUNet.create(path.join(tmp, 'missing.onnx')), /missing\.onnx not found; write one with 'driftlab export/);
  await rejectsDriftlab(OnnxUNet.create(file('other.onnx', good), SPEC_UNET), /other\.onnx was exported from another model config than this checkpoint's/);
  const ok = await OnnxUNet.create(file('good.onnx', good)); // config from the file's metadata
  assert.equal(ok.config, TINY);
  await ok.release();
});

// ---------------------------------------------------------------------------------------------
// the command line
// ---------------------------------------------------------------------------------------------
const hideOrt = path.join(tmp, 'hide-ort.mjs');
fs.writeFileSync(hideOrt, `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`export async function resolve(s, c, next) {
  if (s === 'onnxruntime-node') { const e = new Error("Cannot find package 'onnxruntime-node' imported from driftlab"); e.code = 'ERR_MODULE_NOT_FOUND'; throw e; }
  return next(s, c);
}\`));
`);

function run(args: string[], withoutOrt = false) {
  const pre = withoutOrt ? ['--import', pathToFileURL(hideOrt).href] : [];
  const r = spawnSync(process.execPath, [...pre, CLI, ...args], { encoding: 'utf8', cwd: tmp });
  return { code: r.status, out: r.stdout, err: r.stderr, lines: r.stderr.split('\n').filter((l) => l.startsWith('driftlab:')) };
}
const sampleArgs = (out: string, ...more: string[]) => ['sample', '--ckpt', ckpt, '--n', '2', '--batch', '2', '--steps', '2', '--npy', path.join(tmp, out), '--threads', '1', ...more];

test('CLI: export, then sample from the file; each prints which engine it runs on', async () => {
  await ready();
  const onnxFile = path.join(tmp, 'cli.onnx');
  const e = run(['export', '--ckpt', ckpt, '--out', onnxFile, '--verify']);
  assert.is(e.code, 0, e.err);
  assert.match(e.out, /cli\.onnx: .* MB, \d+ nodes, opset 17, x \[batch,28,28,1\], t \[batch\], labels \[batch\] int64 -> out \[batch,28,28,1\]/);
  assert.match(e.out, /verified: max \|onnx - tfjs wasm\| = /);
  const again = run(['export', '--ckpt', ckpt, '--out', onnxFile]);
  assert.is(again.code, 2);
  assert.match(again.lines.join('\n'), /already exists; pass --overwrite/);
  const s = run(sampleArgs('a.npy', '--onnx', onnxFile));
  assert.is(s.code, 0, s.err);
  assert.equal(s.lines, [s.lines[0]], `one driftlab line on stderr: ${s.err}`);
  assert.match(s.lines[0], /^driftlab: engine onnxruntime-node .* 1 intra-op thread/);
  const t = run(sampleArgs('b.npy', '--engine', 'tfjs'));
  assert.is(t.code, 0, t.err);
  assert.match(t.lines.join('\n'), /^driftlab: engine tfjs .* backend wasm/);
});

test('CLI: a corrupt .onnx file is one error line and exit 2', async () => {
  await ready();
  const bad = path.join(tmp, 'bad.onnx');
  fs.writeFileSync(bad, 'this is not a model');
  const r = run(sampleArgs('c.npy', '--onnx', bad));
  assert.is(r.code, 2);
  assert.equal(r.lines.length, 1, r.err);
  assert.match(r.lines[0], /^driftlab: error: .*bad\.onnx is not a valid ONNX model/);
  assert.not.ok(fs.existsSync(path.join(tmp, 'c.npy')));
});

test('CLI without onnxruntime-node: auto falls back with one warning line; --engine onnx fails clearly', async () => {
  await ready();
  const r = run(sampleArgs('d.npy'), true);
  assert.is(r.code, 0, r.err);
  assert.is(r.lines.length, 2, r.err);
  assert.match(r.lines[0], /^driftlab: warning: onnx engine unavailable, using tfjs: onnxruntime-node is not installed/);
  assert.match(r.lines[1], /^driftlab: engine tfjs /);
  const e = run(sampleArgs('e.npy', '--engine', 'onnx'), true);
  assert.is(e.code, 2);
  assert.equal(e.lines.length, 1, e.err);
  assert.match(e.lines[0], /^driftlab: error: onnxruntime-node is not installed; the onnx engine needs it .* or use --engine tfjs$/);
});

test.run();
