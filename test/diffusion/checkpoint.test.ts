import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint, loadCheckpointConfig, resolveCheckpointDir, saveCheckpoint, type CheckpointData } from '../../src/diffusion/checkpoint.js';
import { getPreset } from '../../src/diffusion/presets.js';
import { countParams, unetParamSpecs } from '../../src/diffusion/unet.js';
import { decodeSafetensors } from '../../src/io/safetensors.js';
import { Rng } from '../../src/util/rng.js';
import { rejectsDriftlab } from '../helpers/backend.js';

const tmpRoots: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(join(tmpdir(), 'driftlab-ckpt-'));
  tmpRoots.push(d);
  return d;
}
test.after(() => { for (const d of tmpRoots) fs.rmSync(d, { recursive: true, force: true }); });

const preset = getPreset('mnist-tiny');
const N = countParams(unetParamSpecs(preset.model));

function randomFlat(rng: Rng, special = false): Float32Array {
  const a = rng.normals(N);
  if (special) {
    // values whose bits are easy to lose: -0, subnormals, extremes, values that do not survive float64 text
    a.set([-0, 1e-45, -1.4e-44, 3.4028234663852886e38, -1.1754943508222875e-38, 0.1, 1 / 3], 0);
  }
  return a;
}

function makeData(seed: number): CheckpointData {
  const rng = new Rng(seed);
  return {
    config: { format: 'driftlab-unet-1', model: preset.model, schedule: preset.schedule, objective: preset.objective, training: { preset: 'mnist-tiny', lr: 2e-3 } },
    params: randomFlat(rng, true),
    ema: randomFlat(rng),
    optimizer: { m: randomFlat(rng), v: randomFlat(rng).map(Math.abs) },
    trainState: { step: 123, adamT: 123, rng: new Rng(seed).getState(), data: { epoch: 2, cursor: 4567, order: [3, 1, 2] }, lossEma: 0.0312345678901234 },
  };
}

function bitsEqual(a: Float32Array | undefined, b: Float32Array | undefined, what: string): void {
  assert.ok(a && b, `${what} missing`);
  assert.is(a!.length, b!.length, `${what} length`);
  const ua = new Uint32Array(a!.buffer, a!.byteOffset, a!.length), ub = new Uint32Array(b!.buffer, b!.byteOffset, b!.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) assert.unreachable(`${what}[${i}] bits ${ua[i].toString(16)} vs ${ub[i].toString(16)}`);
}

test('save/load round trip is bit-exact for params, ema, optimizer m/v and train state', async () => {
  const dir = join(tmp(), 'ckpt');
  const d = makeData(1);
  await saveCheckpoint(dir, d);
  assert.equal(fs.readdirSync(dir).sort(), ['config.json', 'ema.safetensors', 'model.safetensors', 'optimizer.safetensors', 'train-state.json']);
  assert.not.ok(fs.existsSync(`${dir}.tmp`), 'DIR.tmp removed');
  assert.not.ok(fs.existsSync(`${dir}.prev`), 'DIR.prev removed');
  const l = await loadCheckpoint(dir, { optimizer: true });
  bitsEqual(l.params, d.params, 'params');
  bitsEqual(l.ema, d.ema, 'ema');
  bitsEqual(l.optimizer?.m, d.optimizer!.m, 'optimizer.m');
  bitsEqual(l.optimizer?.v, d.optimizer!.v, 'optimizer.v');
  assert.equal(l.trainState, d.trainState);
  assert.equal(l.config.model, preset.model);
  assert.equal(l.config.schedule, preset.schedule);
  assert.equal(l.config.training, d.config.training);
  assert.ok(Object.is(l.params[0], -0), '-0 survives');

  // by default the optimizer is not loaded; ema can be skipped
  const l2 = await loadCheckpoint(dir, { ema: false });
  assert.is(l2.optimizer, undefined);
  assert.is(l2.ema, undefined);
  bitsEqual(l2.params, d.params, 'params (2)');

  // the file is plain safetensors with diffusers names and tfjs layouts
  const st = decodeSafetensors(new Uint8Array(fs.readFileSync(join(dir, 'model.safetensors'))));
  assert.equal(st.tensors['conv_in.weight'].shape, [3, 3, 1, 8]);
  assert.equal(st.tensors['class_embedding.weight'].shape, [11, 32]);
  assert.is(Object.keys(st.tensors).length, unetParamSpecs(preset.model).length);
  const opt = decodeSafetensors(new Uint8Array(fs.readFileSync(join(dir, 'optimizer.safetensors'))));
  assert.is(Object.keys(opt.tensors).length, 2 * unetParamSpecs(preset.model).length);
  assert.ok('m.conv_in.weight' in opt.tensors && 'v.conv_in.weight' in opt.tensors);
  // flat order = spec order: the first spec's values open the flat array
  const first = unetParamSpecs(preset.model)[0];
  const firstVals = st.tensors[first.name].data as Float32Array;
  bitsEqual(firstVals, d.params.subarray(0, firstVals.length), `first tensor ${first.name}`);
});

test('a truncated model.safetensors is refused with a DriftlabError mentioning "truncated"', async () => {
  const dir = join(tmp(), 'ckpt');
  await saveCheckpoint(dir, makeData(2));
  const f = join(dir, 'model.safetensors');
  const bytes = fs.readFileSync(f);
  fs.writeFileSync(f, bytes.subarray(0, bytes.length - 100));
  await rejectsDriftlab(loadCheckpoint(dir), /truncated/, 'truncated model');
  // a truncated ema file too
  await saveCheckpoint(dir, makeData(2));
  const e = join(dir, 'ema.safetensors');
  fs.writeFileSync(e, fs.readFileSync(e).subarray(0, 5000));
  await rejectsDriftlab(loadCheckpoint(dir), /truncated/, 'truncated ema');
  // ... and loading without ema does not touch it
  const ok = await loadCheckpoint(dir, { ema: false });
  assert.is(ok.params.length, N);
});

test('config.json that does not match the weights is refused ("does not match")', async () => {
  const dir = join(tmp(), 'ckpt');
  await saveCheckpoint(dir, makeData(3));
  const cfgFile = join(dir, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
  cfg.model.blockOutChannels = [8, 24];
  fs.writeFileSync(cfgFile, JSON.stringify(cfg));
  await rejectsDriftlab(loadCheckpoint(dir), /does not match/, 'blockOutChannels');
  // fewer classes: the class table has another shape
  cfg.model.blockOutChannels = [8, 16];
  cfg.model.numClasses = 5;
  fs.writeFileSync(cfgFile, JSON.stringify(cfg));
  await rejectsDriftlab(loadCheckpoint(dir), /does not match/, 'numClasses');
  // unconditional: the weights have an extra tensor
  cfg.model.numClasses = 0;
  fs.writeFileSync(cfgFile, JSON.stringify(cfg));
  await rejectsDriftlab(loadCheckpoint(dir), /does not match/, 'extra tensor');
  // invalid config values and broken JSON are DriftlabErrors too
  cfg.model.numClasses = 10;
  cfg.model.normGroups = 3;
  fs.writeFileSync(cfgFile, JSON.stringify(cfg));
  await rejectsDriftlab(loadCheckpoint(dir), /normGroups/, 'normGroups');
  fs.writeFileSync(cfgFile, '{"model": ');
  await rejectsDriftlab(loadCheckpoint(dir), /JSON/, 'bad JSON');
});

test('a missing folder, or a folder without config.json, is refused', async () => {
  const root = tmp();
  await rejectsDriftlab(loadCheckpoint(join(root, 'nope')), /not found/, 'missing folder');
  await rejectsDriftlab(loadCheckpointConfig(join(root, 'nope')), /not found/, 'missing folder (config)');
  fs.mkdirSync(join(root, 'empty'));
  await rejectsDriftlab(loadCheckpoint(join(root, 'empty')), /not a driftlab checkpoint/, 'empty folder');
  // config.json present, model.safetensors missing: a shipped (EMA-only) checkpoint, whose EMA
  // weights stand in for the raw ones; with neither weights file the folder is refused.
  const dir = join(root, 'ckpt');
  const d = makeData(4);
  await saveCheckpoint(dir, d);
  fs.rmSync(join(dir, 'model.safetensors'));
  const l = await loadCheckpoint(dir);
  bitsEqual(l.params, d.ema, 'EMA stands in for missing raw params');
  bitsEqual((await loadCheckpoint(dir, { ema: false })).params, d.ema, 'EMA stands in (ema: false)');
  fs.rmSync(join(dir, 'ema.safetensors'));
  await rejectsDriftlab(loadCheckpoint(dir), /neither model.safetensors nor ema.safetensors/, 'no weights at all');
});

test('a save killed between renames (DIR.prev, no DIR) loads through the fallback', async () => {
  const root = tmp();
  const dir = join(root, 'run');
  const d = makeData(5);
  await saveCheckpoint(dir, d);
  fs.renameSync(dir, `${dir}.prev`);
  // a half-written DIR.tmp may be lying around too
  fs.mkdirSync(`${dir}.tmp`);
  fs.writeFileSync(join(`${dir}.tmp`, 'model.safetensors'), 'partial');
  assert.is(resolveCheckpointDir(dir), `${dir}.prev`);
  const l = await loadCheckpoint(dir, { optimizer: true });
  bitsEqual(l.params, d.params, 'params via .prev');
  bitsEqual(l.optimizer?.v, d.optimizer!.v, 'optimizer.v via .prev');
  assert.equal(l.trainState, d.trainState);

  // DIR wins over DIR.prev when both are complete (killed after the second rename)
  const d2 = makeData(6);
  await saveCheckpoint(join(root, 'other'), d2);
  fs.renameSync(join(root, 'other'), dir);
  assert.is(resolveCheckpointDir(dir), dir);
  bitsEqual((await loadCheckpoint(dir)).params, d2.params, 'DIR preferred');
});

test('the next save after a killed save replaces the fallback cleanly', async () => {
  const root = tmp();
  const dir = join(root, 'run');
  await saveCheckpoint(dir, makeData(7));
  fs.renameSync(dir, `${dir}.prev`);
  const d = makeData(8);
  await saveCheckpoint(dir, d);
  assert.not.ok(fs.existsSync(`${dir}.prev`));
  assert.not.ok(fs.existsSync(`${dir}.tmp`));
  bitsEqual((await loadCheckpoint(dir)).params, d.params, 'new params');
});

test('extra files in the folder (train-log.jsonl, notes) survive later saves', async () => {
  const root = tmp();
  const dir = join(root, 'run');
  await saveCheckpoint(dir, makeData(9));
  fs.writeFileSync(join(dir, 'train-log.jsonl'), '{"step":1,"loss":0.5}\n');
  fs.mkdirSync(join(dir, 'samples'));
  fs.writeFileSync(join(dir, 'samples', 'step-1.png'), 'png');
  // an open log descriptor keeps appending into the moved file
  const fd = fs.openSync(join(dir, 'train-log.jsonl'), 'a');
  const d = makeData(10);
  await saveCheckpoint(dir, d);
  fs.writeSync(fd, '{"step":2,"loss":0.4}\n');
  fs.closeSync(fd);
  await saveCheckpoint(dir, { ...d, optimizer: undefined }); // a third save, without optimizer
  assert.is(fs.readFileSync(join(dir, 'train-log.jsonl'), 'utf8'), '{"step":1,"loss":0.5}\n{"step":2,"loss":0.4}\n');
  assert.is(fs.readFileSync(join(dir, 'samples', 'step-1.png'), 'utf8'), 'png');
  // a checkpoint file that the new save does not write is not carried over from the old one
  assert.not.ok(fs.existsSync(join(dir, 'optimizer.safetensors')), 'stale optimizer state must not survive');
  const l = await loadCheckpoint(dir, { optimizer: true });
  assert.is(l.optimizer, undefined);
  bitsEqual(l.params, d.params, 'params after 3 saves');
});

test('extra files survive a save that follows a killed save (they sit in DIR.prev)', async () => {
  const root = tmp();
  const dir = join(root, 'run');
  await saveCheckpoint(dir, makeData(11));
  fs.writeFileSync(join(dir, 'train-log.jsonl'), '{"step":1}\n');
  fs.renameSync(dir, `${dir}.prev`); // killed right after "DIR -> DIR.prev"
  await saveCheckpoint(dir, makeData(12)); // resumed training saves again
  assert.ok(fs.existsSync(join(dir, 'train-log.jsonl')), 'train-log.jsonl was deleted together with DIR.prev');
});

test.run();
