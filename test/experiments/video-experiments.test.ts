/** The drift experiments end to end on tiny settings: run folders with meta, tables, results and plots. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tinyVideoPipeline } from '../helpers/video.js';
import { ensureWasm } from '../helpers/backend.js';
import { tempDir } from '../helpers/common.js';
import { driftVsHorizon } from '../../experiments/drift-vs-horizon.js';
import { contextNoiseSweep } from '../../experiments/context-noise-sweep.js';
import { imageToVideo } from '../../experiments/image-to-video.js';
import { recipeArm, videoRecipe } from '../../experiments/video-recipe.js';
import { getVideoPreset } from '../../src/video/presets.js';
import { throwsDriftlab } from '../helpers/common.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.js');
const dir = tempDir('driftlab-vexp-');
const tiny = tinyVideoPipeline(dir);
const small = { horizon: 4, rollouts: 2, steps: 2, seed: 5, engine: 'tfjs' as const, refFrames: 32, refClips: 8, videoFrames: 8, quiet: true };
const budget = { ...small, preset: 'mmnist-tiny', trainSteps: 2, batchSize: 2, workers: 1, backend: 'wasm' as const, trainEngine: 'tfjs' as const, root: path.join(dir, 'results') };

function checkRun(d: string, files: string[]) {
  const meta = JSON.parse(fs.readFileSync(path.join(d, 'meta.json'), 'utf8'));
  assert.is(meta.seed, 5);
  assert.ok(meta.versions.node && meta.versions.tfjs, 'software versions recorded');
  for (const f of files) assert.ok(fs.existsSync(path.join(d, f)), `${f} missing in ${d}`);
}

test.before(async () => {
  await ensureWasm();
  await tiny.pipeline();
});

test('drift-vs-horizon: every corrector, a table at the frames that fit', async () => {
  const r = await driftVsHorizon({
    ckpt: tiny.ckpt, correctors: ['none', 'renoise', 'kalman'], correctorConfig: { kalman: { d: 4 } }, fitClips: 12, root: path.join(dir, 'results'), ...small, horizon: 12,
  });
  checkRun(r.dir, ['table.md', 'results.json', 'study/report.html', 'study/plots/mse.svg', 'study/plots/traj.png']);
  const table = fs.readFileSync(path.join(r.dir, 'table.md'), 'utf8');
  assert.match(table, /MSE@10/);
  assert.not.match(table, /MSE@100\b/);
  assert.match(table, /\| kalman \|/);
});

test('driftlab experiment drift-vs-horizon measures the in-loop correctors beside the frame correctors, each with its settings', () => {
  const root = path.join(dir, 'results-inloop');
  const correctors = ['none', 'renoise', 'history-guidance', 'reconstruction-guidance', 'anchor', 'renoise+anchor'];
  const config = { renoise: { t: 50 }, 'history-guidance': { w: 2 }, 'reconstruction-guidance': { scale: 50 }, anchor: { t: 999, strength: 0.7 } };
  const args = (cs: string[], cfg: object, out: string) => [
    CLI, 'experiment', 'drift-vs-horizon', '--ckpt', tiny.ckpt, '--correctors', cs.join(','), '--corrector-config', JSON.stringify(cfg),
    '--horizon', '3', '--rollouts', '2', '--steps', '2', '--chunk', '2', '--ref-frames', '32', '--ref-clips', '8', '--fvd-horizons', '0',
    '--engine', 'tfjs', '--backend', 'wasm', '--seed', '5', '--root', out,
  ];
  const r = spawnSync(process.execPath, args(correctors, config, root), { encoding: 'utf8', env: { ...process.env, DRIFTLAB_DEBUG: '' } });
  assert.is(r.status, 0, r.stderr);
  const [run] = fs.readdirSync(path.join(root, 'drift-vs-horizon')).map((d) => path.join(root, 'drift-vs-horizon', d));
  checkRun(run, ['table.md', 'results.json', 'study/report.html']);
  const table = fs.readFileSync(path.join(run, 'table.md'), 'utf8');
  for (const c of correctors) assert.match(table, new RegExp(`\\| ${c.replace('+', '\\+')} \\|`), `no row for ${c}`);
  // each rollout ran with its own settings (run.json), the chain with both parts'
  const runJson = (c: string) => JSON.parse(fs.readFileSync(path.join(run, 'study', 'rollouts', c, 'run.json'), 'utf8')).corrector;
  assert.equal(runJson('history-guidance'), { name: 'history-guidance', w: 2 });
  assert.equal(runJson('reconstruction-guidance'), { name: 'reconstruction-guidance', scale: 50 });
  assert.equal(runJson('anchor'), { name: 'anchor', t: 999, strength: 0.7 });
  assert.equal(runJson('renoise+anchor').chain.map((c: any) => [c.name, c.t]), [['renoise', 50], ['anchor', 999]]);
  // ... and changed the frames: every in-loop rollout differs from none and from the others (common random numbers otherwise)
  const frames = (c: string) => fs.readFileSync(path.join(run, 'study', 'rollouts', c, 'frames.npy'));
  for (let i = 0; i < correctors.length; i++) for (let j = i + 1; j < correctors.length; j++) {
    assert.not.ok(frames(correctors[i]).equals(frames(correctors[j])), `${correctors[i]} and ${correctors[j]} gave the same frames`);
  }
  const meta = JSON.parse(fs.readFileSync(path.join(run, 'meta.json'), 'utf8'));
  assert.equal(meta.config.correctorConfig, config);
  // settings keyed by a name not in the study, and a bad setting, fail in one line before anything rolls out
  for (const [cfg, re] of [[{ 'history-guidanse': { w: 2 } }, /settings for 'history-guidanse', which is not among the correctors/], [{ anchor: { strength: 2 } }, /anchor: "strength" must be a number in 0\.\.1/]] as const) {
    const out = path.join(dir, 'results-bad');
    const bad = spawnSync(process.execPath, args(['none', 'history-guidance', 'anchor'], cfg, out), { encoding: 'utf8', env: { ...process.env, DRIFTLAB_DEBUG: '' } });
    assert.ok(bad.status !== 0, `${JSON.stringify(cfg)} accepted`);
    const errs = bad.stderr.split('\n').filter((l) => l.startsWith('driftlab: error:'));
    assert.is(errs.length, 1, bad.stderr);
    assert.match(errs[0], re);
    const studies = fs.existsSync(path.join(out, 'drift-vs-horizon')) ? fs.readdirSync(path.join(out, 'drift-vs-horizon')) : [];
    for (const d of studies) assert.not.ok(fs.existsSync(path.join(out, 'drift-vs-horizon', d, 'study', 'rollouts')), 'rolled out before the settings were checked');
  }
});

test('context-noise-sweep: one model per level, none and context-noise rows', async () => {
  const r = await contextNoiseSweep({ ...budget, levels: [0, 50] });
  checkRun(r.dir, ['table.md', 'results.json', 'mse-vs-frame.svg', 'mse-vs-level.png', 'models/ctx-noise-50/config.json', 'drift/ctx-noise-50/report.html']);
  assert.equal(r.rows.map((x) => `${x.level}/${x.corrector}`), ['0/none', '50/none', '50/context-noise', '-/copy-last (baseline)', '-/blank (baseline)']);
  const cfg = JSON.parse(fs.readFileSync(path.join(r.dir, 'models', 'ctx-noise-50', 'config.json'), 'utf8'));
  assert.is(cfg.training.maxContextT, 50);
});

test('image-to-video: image-initialised vs scratch at equal steps', async () => {
  const r = await imageToVideo({ ...budget, imageSteps: 2 });
  checkRun(r.dir, ['table.md', 'results.json', 'image/config.json', 'train-loss.svg', 'mse-vs-frame.png']);
  assert.equal(r.rows.map((x) => x.model), ['from-image', 'from-scratch', 'copy-last (baseline)', 'blank (baseline)']);
  const a = JSON.parse(fs.readFileSync(path.join(r.dir, 'models', 'from-image', 'config.json'), 'utf8'));
  const b = JSON.parse(fs.readFileSync(path.join(r.dir, 'models', 'from-scratch', 'config.json'), 'utf8'));
  assert.ok(a.training.initImage, 'initialised from the image model');
  assert.is(b.training.initImage, null);
  assert.is(a.training.steps, b.training.steps, 'equal compute');
  const logs = ['from-image', 'from-scratch'].map((m) => fs.readFileSync(path.join(r.dir, 'models', m, 'train-log.jsonl'), 'utf8').trim().split('\n').length);
  assert.equal(logs, [2, 2]);
  // from-scratch has the recipe of the context-noise sweep's level-0 arm (run above): copied, not retrained
  const from = fs.readFileSync(path.join(r.dir, 'models', 'from-scratch', 'reused-from.txt'), 'utf8').trim();
  assert.match(from, /context-noise-sweep\/[^/]+\/models\/ctx-noise-0$/);
  assert.ok(fs.readFileSync(path.join(from, 'ema.safetensors')).equals(fs.readFileSync(path.join(r.dir, 'models', 'from-scratch', 'ema.safetensors'))));
  // from-image was trained here (its image init differs from every earlier arm)
  assert.not.ok(fs.existsSync(path.join(r.dir, 'models', 'from-image', 'reused-from.txt')));
});

test('a reused arm is what training it again gives (same seed, same backend, same bytes)', async () => {
  const { trainArm } = await import('../../experiments/video-common.js');
  const fresh = await trainArm(path.join(dir, 'fresh'), { name: 'scratch' }, { ...budget, root: undefined }, ['none']);
  const earlier = fs.readdirSync(path.join(dir, 'results', 'context-noise-sweep'))[0];
  const a = fs.readFileSync(path.join(fresh.ckpt, 'ema.safetensors'));
  const b = fs.readFileSync(path.join(dir, 'results', 'context-noise-sweep', earlier, 'models', 'ctx-noise-0', 'ema.safetensors'));
  assert.ok(a.equals(b), 'retrained bytes equal the reused ones');
});

test('video-recipe: arm names map to the recipes they name; bad names fail before anything trains', () => {
  const p = getVideoPreset('mmnist-small'); // K = 4, 1 target, batch 32
  recipeArm('attn-eps')(p);
  assert.equal([p.model.video!.frames, p.model.video!.conditioning, p.model.video!.temporal, p.model.video!.temporalMid], [8, 'attention', [false, true, true], true]);
  assert.equal([p.objective.prediction, p.objective.weighting, p.train.contextDropout, p.train.batchSize], ['epsilon', 'uniform', 0, 8]);
  const old = getVideoPreset('mmnist-small-attn');
  assert.equal(p.model, { ...old.model, video: { ...old.model.video!, conditioning: 'attention' } }, 'attn-eps is the first recipe (attention is its default conditioning)');
  const q = getVideoPreset('mmnist-small');
  recipeArm('concat2-attn-v-minsnr-drop-df')(q);
  assert.equal([q.model.video!.frames, q.model.video!.conditioning, q.model.video!.temporal, q.model.video!.temporalMid], [6, 'concat', [true, true, true], true]);
  assert.equal([q.objective.prediction, q.objective.weighting, q.train.contextDropout, q.train.independentT, q.train.batchSize], ['v', 'min-snr', 0.1, true, 16]);
  const c = getVideoPreset('mmnist-small');
  recipeArm('concat-v-drop')(c);
  assert.equal(c, getVideoPreset('mmnist-small'), 'concat-v-drop is the current preset');
  throwsDriftlab(() => recipeArm('lstm-v'), /must start with/);
  throwsDriftlab(() => recipeArm('concat-drop'), /one prediction target/);
  throwsDriftlab(() => recipeArm('concat-v-eps'), /one prediction target/);
  throwsDriftlab(() => recipeArm('concat-v-fast'), /unknown part 'fast'/);
  throwsDriftlab(() => recipeArm('concat-v-df'), /-df needs 2 or more targets/);
  throwsDriftlab(() => recipeArm('concat-v-cn0'), /-cnL with L in 1..999/);
  const n = getVideoPreset('mmnist-small');
  recipeArm('concat-v-cn100')(n);
  assert.is(n.train.maxContextT, 100);
});

test('video-recipe: a table of context use, trajectory error and tracking horizon per arm beside the baselines; a wall-time budget is spent once', async () => {
  const r = await videoRecipe({ ...budget, arms: ['attn-eps', 'concat-v-drop'], minutes: 0.01, trainSteps: 1000, windows: 2, horizon: 4 });
  checkRun(r.dir, ['table.md', 'results.json', 'traj-vs-frame.svg', 'context-use.png', 'models/concat-v-drop/budget-done.json', 'drift/attn-eps/report.html']);
  assert.equal(r.rows.map((x) => x.arm), ['attn-eps', 'concat-v-drop', 'copy-last (baseline)', 'blank (baseline)', 'real (truth)']);
  for (const k of ['traj px@1', 'traj px@4', 'tracking horizon (traj > 8 px)', 'ctx other/true t=500']) assert.ok(k in r.rows[0], k);
  assert.is(r.rows[3]['tracking horizon (traj > 8 px)'], '1', 'blank frames lose the digits at once');
  const cfg = JSON.parse(fs.readFileSync(path.join(r.dir, 'models', 'concat-v-drop', 'config.json'), 'utf8'));
  assert.is(cfg.model.video.conditioning, 'concat');
  const res = JSON.parse(fs.readFileSync(path.join(r.dir, 'results.json'), 'utf8'));
  const cu = res.arms[1].contextUse;
  assert.equal(cu.t, [100, 300, 500, 700, 900]);
  assert.ok(Math.abs(r.rows[1]['ctx other/true t=500'] as number - cu.ratioOther[2]) < 1e-12);
  const log = path.join(r.dir, 'models', 'attn-eps', 'train-log.jsonl');
  const before = fs.readFileSync(log, 'utf8');
  const again = await videoRecipe({ ...budget, arms: ['attn-eps', 'concat-v-drop'], minutes: 0.01, trainSteps: 1000, windows: 2, horizon: 4, resume: r.dir });
  assert.is(fs.readFileSync(log, 'utf8'), before, 'the spent budget is not trained again on --resume');
  assert.equal(again.rows, r.rows);
});

test('video-recipe --train-engine onnx: the arm trains on onnxruntime, says so in its recipe, and is never taken for the tfjs arm of the same name', async () => {
  const tfjsArm = path.join(dir, 'results', 'video-recipe');
  assert.ok(fs.existsSync(tfjsArm), 'the tfjs run above exists under the same root');
  const r = await videoRecipe({ ...budget, trainEngine: 'onnx', trainThreads: 1, arms: ['concat-v-drop'], minutes: 0.01, trainSteps: 1000, windows: 2, horizon: 4 });
  const arm = path.join(r.dir, 'models', 'concat-v-drop');
  assert.not.ok(fs.existsSync(path.join(arm, 'reused-from.txt')), 'not reused from the tfjs arm');
  const recipe = JSON.parse(fs.readFileSync(path.join(arm, 'recipe.json'), 'utf8'));
  assert.is(recipe.trainEngine, 'onnx');
  assert.is(recipe.trainThreads, 1);
  const steps = fs.readFileSync(path.join(arm, 'train-log.jsonl'), 'utf8').trim().split('\n').length;
  assert.ok(steps >= 1, 'trained');
});

test.run();
