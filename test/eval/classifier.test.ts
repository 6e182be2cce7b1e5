/**
 * The shipped MNIST classifier: loads, scores its held-out digits (never trained on) above 98%,
 * and drives FID: real-vs-real through scoreImages equals the baseline, noise is far away, and a
 * checkpoint can be sampled and scored end to end.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadBundledMnist } from '../../datasets/mnist/index.js';
import { saveCheckpoint, CHECKPOINT_FORMAT } from '../../src/diffusion/checkpoint.js';
import { UNetModel } from '../../src/diffusion/model.js';
import { getPreset } from '../../src/diffusion/presets.js';
import { DEFAULT_CLASSIFIER_DIR, MnistClassifier, loadClassifier, splitIndices } from '../../src/eval/features/mnist-classifier.js';
import { featureNetNames, getFeatureNetEntry, isClassifier } from '../../src/eval/features/index.js';
import { evaluateCheckpoint, prepareReference, scoreImages } from '../../src/eval/fid.js';
import { evaluateOn } from '../../src/eval/train-classifier.js';
import { Rng } from '../../src/util/rng.js';
import { ensureWasm, rejectsDriftlab } from '../helpers/backend.js';

let clf: MnistClassifier;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'driftlab-eval-'));

test.before(async () => {
  await ensureWasm();
  clf = await loadClassifier();
});
test.after(() => {
  clf?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('shipped checkpoint: small, registered, 128-d features', async () => {
  const bytes = fs.readdirSync(DEFAULT_CLASSIFIER_DIR).reduce((s, f) => s + fs.statSync(path.join(DEFAULT_CLASSIFIER_DIR, f)).size, 0);
  assert.ok(bytes < 1.1e6, `checkpoint folder is ${bytes} bytes`);
  assert.ok(featureNetNames().includes('mnist-classifier'));
  assert.is(getFeatureNetEntry('mnist-classifier').defaultCheckpoint, DEFAULT_CLASSIFIER_DIR);
  assert.ok(isClassifier(clf));
  assert.is(clf.dim, 128);
  assert.equal([...clf.inputShape], [28, 28, 1]);
});

test('held-out split: disjoint, 8,000 / 2,000, and scored above 98%', () => {
  const data = loadBundledMnist();
  const { train, heldout } = splitIndices(data.n, clf.config.split);
  assert.is(train.length, 8000);
  assert.is(heldout.length, 2000);
  const seen = new Set(train);
  assert.ok(heldout.every((i) => !seen.has(i)), 'held-out digits overlap the training digits');
  const r = evaluateOn(clf, data.images, data.labels, heldout);
  assert.ok(r.accuracy > 0.98, `held-out accuracy ${r.accuracy}`);
  const recorded = (clf.config.results as any).heldoutAccuracy as number;
  assert.ok(Math.abs(r.accuracy - recorded) <= 1 / 2000, `recorded ${recorded} vs measured ${r.accuracy}`);
});

test('FID pieces: real-vs-real equals the baseline; noise is far off; real digits classify', () => {
  const ref = prepareReference(clf, 'heldout', 0);
  assert.is(ref.sizeA, 1000);
  assert.is(ref.sizeB, 1000);
  // half A itself, scored as "samples", is exactly the baseline
  const data = loadBundledMnist();
  const { heldout } = splitIndices(data.n, clf.config.split);
  const idx = heldout.slice();
  new Rng('fid-reference/heldout/0').shuffle(idx);
  const n = 500;
  const x = new Float32Array(n * 784), labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 784; j++) x[i * 784 + j] = data.images[idx[i] * 784 + j] / 255;
    labels[i] = data.labels[idx[i]];
  }
  const real = scoreImages(clf, ref, x, n, labels);
  assert.ok(Math.abs(real.fid - real.baseline) < 1e-9 * Math.max(1, real.baseline), `${real.fid} vs ${real.baseline}`);
  assert.ok(real.accuracy! > 0.97);
  assert.ok(real.confidence > 0.9);
  const rng = new Rng(1);
  const noise = Float32Array.from({ length: n * 784 }, () => rng.uniform());
  const bad = scoreImages(clf, ref, noise, n, labels);
  assert.ok(bad.fid > 10 * real.baseline, `noise FID ${bad.fid} vs baseline ${real.baseline}`);
  assert.ok(bad.accuracy! < 0.3);
});

test('evaluateCheckpoint samples a (random, tiny) checkpoint and reports every number', async () => {
  const preset = getPreset('mnist-tiny');
  const model = new UNetModel(preset.model, 0);
  const dir = path.join(tmp, 'tiny');
  await saveCheckpoint(dir, { config: { format: CHECKPOINT_FORMAT, model: preset.model, schedule: preset.schedule, objective: preset.objective }, params: model.getFlat() });
  model.dispose();
  const ref = prepareReference(clf, 'heldout', 0);
  const r = await evaluateCheckpoint(clf, { ckpt: dir, n: 20, batch: 10, sampler: 'ddim', steps: 2, eta: 0, guidance: 2, seed: 0, weights: 'model', pool: 'heldout' }, ref);
  assert.is(r.n, 20);
  assert.is(r.baselineN, 20);
  assert.ok(r.conditional);
  assert.ok(Number.isFinite(r.fid) && r.fid > r.baseline, `fid ${r.fid}, baseline ${r.baseline}`);
  assert.ok(r.accuracy! >= 0 && r.accuracy! <= 1);
  assert.ok(r.confidence > 0 && r.confidence <= 1);
  // x0 is clipped by default, as in driftlab sample; switching it off changes the samples
  assert.is(r.clipX0, true);
  const raw = await evaluateCheckpoint(clf, { ckpt: dir, n: 20, batch: 10, sampler: 'ddim', steps: 2, eta: 0, guidance: 2, seed: 0, weights: 'model', pool: 'heldout', clipX0: false }, ref);
  assert.is(raw.clipX0, false);
  assert.ok(raw.fid !== r.fid, `clipping made no difference (FID ${r.fid})`);
  assert.match(r.metric, /driftlab MNIST classifier.*not comparable with Inception/);
  await rejectsDriftlab(evaluateCheckpoint(clf, { ckpt: path.join(tmp, 'nope'), n: 20, batch: 10, sampler: 'ddim', steps: 2, eta: 0, guidance: 1, seed: 0, weights: 'ema', pool: 'heldout' }, ref), /checkpoint not found/);
});

test.run();
