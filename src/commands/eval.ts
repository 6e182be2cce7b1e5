/**
 * driftlab eval: Frechet distances of feature files, per-frame metrics, the MNIST classifier that
 * defines "FID with the driftlab MNIST classifier", FID / accuracy of a checkpoint's samples, and
 * the Moving-MNIST frame and clip encoders (train-features) behind the frame distance and FVD.
 */
import type { CommandModule } from 'yargs';
import { initBackend, BackendName } from '../backend.js';
import { SAMPLERS, SamplerName } from '../diffusion/samplers.js';
import { DEFAULT_CLASSIFIER_DIR, MNIST_FID_NAME, loadClassifier } from '../eval/features/mnist-classifier.js';
import type { RealPool } from '../eval/fid.js';
import { DriftlabError } from '../util/errors.js';
import { Progress } from '../util/progress.js';
import { nonNegative, positiveInt } from './common.js';
import { contextUseCommand } from './eval-context-use.js';

// The metric modules load lazily: mathjs alone takes ~1.5 s to import, and every driftlab
// command registers this one.
const frechetModule = () => import('../eval/frechet.js');
const fidModule = () => import('../eval/fid.js');
const REAL_POOLS: RealPool[] = ['all', 'heldout'];

/** JSON has no Infinity: +-Infinity and NaN print as null (documented in docs/EVALUATION.md). */
const finiteOrNull = (v: number) => (Number.isFinite(v) ? v : null);
const pct = (v: number) => `${(100 * v).toFixed(2)}%`;

const frechetCommand: CommandModule<any, any> = {
  command: 'frechet <a> <b>',
  describe: 'Frechet distance d^2 between Gaussians fitted to two [N,D] float32/float64 feature .npy files',
  builder: (y) => y
    .positional('a', { type: 'string', describe: 'features A, [N,D] .npy' })
    .positional('b', { type: 'string', describe: 'features B, [M,D] .npy' })
    .option('json', { type: 'boolean', default: false, describe: 'print {"frechet": value}' }),
  handler: async (a) => {
    const { readFeatures } = await import('../eval/inputs.js');
    const A = await readFeatures(a.a);
    const B = await readFeatures(a.b);
    if (A.dim !== B.dim) throw new DriftlabError(`${a.a} has D=${A.dim} features per row but ${a.b} has D=${B.dim}; both must come from the same feature network`);
    const { frechetFromFeatures } = await frechetModule();
    const r = frechetFromFeatures(A.x, A.n, B.x, B.n, A.dim);
    if (a.json) process.stdout.write(JSON.stringify({ frechet: r.frechet }) + '\n');
    else {
      process.stdout.write(`Frechet distance d^2 = ${r.frechet} (|mu1-mu2|^2 ${r.meanTerm.toPrecision(6)}, trace term ${r.traceTerm.toPrecision(6)})\n`);
      process.stdout.write(`  A: ${a.a} N=${A.n}; B: ${a.b} N=${B.n}; D=${A.dim}; covariances with the N-1 normaliser, float64\n`);
    }
  },
};

const framesCommand: CommandModule<any, any> = {
  command: 'frames <pred> <truth>',
  describe: 'per-frame MSE, PSNR and SSIM of [T,H,W] or [N,T,H,W] frames (uint8, or float in [0,1]) against ground truth',
  builder: (y) => y
    .positional('pred', { type: 'string', describe: 'predicted frames .npy' })
    .positional('truth', { type: 'string', describe: 'ground-truth frames .npy, same shape' })
    .option('json', { type: 'boolean', default: false, describe: 'print {"mse": [...], "psnr": [...], "ssim": [...]}' }),
  handler: async (a) => {
    const { readFrames } = await import('../eval/inputs.js');
    const { frameMetrics } = await import('../eval/frames.js');
    const pred = await readFrames(a.pred);
    const truth = await readFrames(a.truth);
    const m = frameMetrics(pred, truth);
    if (a.json) {
      process.stdout.write(JSON.stringify({
        mse: m.mse, psnr: m.psnr.map(finiteOrNull), ssim: m.ssim, n: m.n, data_range: m.dataRange,
        notes: 'pixels in [0,1] (uint8 / 255); psnr in dB, mean over N of per-sequence PSNR, null = +Infinity (identical frames); ssim: Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, mean over the valid region',
      }) + '\n');
      return;
    }
    process.stdout.write(`${m.frames} frames of ${m.height}x${m.width}, averaged over N=${m.n}; data range 1 (uint8 / 255)\n`);
    process.stdout.write('frame        mse   psnr(dB)     ssim\n');
    m.mse.forEach((v, t) => {
      process.stdout.write(`${String(t).padStart(5)} ${v.toExponential(3).padStart(10)} ${(Number.isFinite(m.psnr[t]) ? m.psnr[t].toFixed(3) : 'inf').padStart(10)} ${m.ssim[t].toFixed(5).padStart(8)}\n`);
    });
  },
};

const trainClassifierCommand: CommandModule<any, any> = {
  command: 'train-classifier',
  describe: 'train the MNIST classifier whose features define FID for digits (seeded split of the bundled digits)',
  builder: (y) => y
    .option('out', { type: 'string', demandOption: true, describe: 'classifier folder (config.json, model.safetensors, train-log.jsonl)' })
    .option('epochs', { type: 'number', default: 10, describe: 'passes over the training split' })
    .option('batch-size', { type: 'number', default: 64 })
    .option('lr', { type: 'number', default: 2e-3, describe: 'peak AdamW learning rate (cosine decay to 0)' })
    .option('warmup', { type: 'number', default: 100, describe: 'linear warm-up steps' })
    .option('weight-decay', { type: 'number', default: 1e-4 })
    .option('shift', { type: 'number', default: 2, describe: 'random translation augmentation, max pixels per axis' })
    .option('heldout', { type: 'number', default: 2000, describe: 'bundled digits held out for testing (never trained on)' })
    .option('split-seed', { type: 'number', default: 0, describe: 'seed of the train / held-out permutation' })
    .option('overwrite', { type: 'boolean', default: false, describe: 'replace a classifier already in --out' }),
  handler: async (a) => {
    const { trainClassifier } = await import('../eval/train-classifier.js');
    const info = await initBackend(a.backend as BackendName);
    const r = await trainClassifier({
      out: a.out, seed: a.seed, epochs: positiveInt('epochs', a.epochs), batchSize: positiveInt('batch-size', a.batchSize),
      lr: nonNegative('lr', a.lr), warmup: Math.floor(nonNegative('warmup', a.warmup)), weightDecay: nonNegative('weight-decay', a.weightDecay),
      shift: a.shift, heldout: positiveInt('heldout', a.heldout), splitSeed: a.splitSeed, overwrite: a.overwrite,
      command: `driftlab ${process.argv.slice(2).join(' ')}`, backendLine: info.line,
    });
    process.stdout.write(`held-out accuracy ${pct(r.heldoutAccuracy)} on ${r.heldoutN} bundled digits never trained on; ${r.steps} steps in ${r.seconds.toFixed(0)} s\nclassifier: ${a.out}\n`);
  },
};

const trainFeaturesCommand: CommandModule<any, any> = {
  command: 'train-features',
  describe: 'train a Moving-MNIST feature network (frame encoder for the Frechet frame distance, clip encoder for FVD) on clips generated on the fly',
  builder: (y) => y
    .usage('driftlab eval train-features --net mmnist-frame|mmnist-clip --out DIR [options]\n\n'
      + 'Trains on clips of the Moving-MNIST simulator (1-3 digits from the train digit split, each clip seen once), then scores\n'
      + 'held-out clips whose digit images come from the test split: digit-presence accuracy / F1, digit count, position error\n'
      + '(and velocity error for the clip encoder). Writes DIR/config.json, DIR/model.safetensors, DIR/train-log.jsonl.')
    .option('net', { choices: ['mmnist-frame', 'mmnist-clip'], demandOption: true, describe: 'which encoder: 32x32 frames, or 16-frame clips of 32x32' })
    .option('out', { type: 'string', demandOption: true, describe: 'output folder (config.json, model.safetensors, train-log.jsonl)' })
    .option('steps', { type: 'number', default: 3000, describe: 'optimizer steps (one fresh batch of clips each)' })
    .option('batch-size', { type: 'number', default: 32, describe: 'frames (mmnist-frame) or clips (mmnist-clip) per step' })
    .option('lr', { type: 'number', default: 2e-3, describe: 'peak AdamW learning rate (linear warm-up, cosine decay to 0)' })
    .option('warmup', { type: 'number', describe: 'linear warm-up steps (default min(200, steps / 10))' })
    .option('weight-decay', { type: 'number', default: 1e-4 })
    .option('heldout', { type: 'number', describe: 'held-out samples scored at the end (default 2000 frames / 500 clips)' })
    .option('eval-every', { type: 'number', default: 500, describe: 'score 256 held-out samples every this many steps (0: only at the end)' })
    .option('overwrite', { type: 'boolean', default: false, describe: 'replace a network already in --out' })
    .option('init-frame', { type: 'string', describe: 'mmnist-clip only: initialise the per-frame conv stack (and per-frame fc) from this trained mmnist-frame folder; nothing frozen' })
    .example('driftlab eval train-features --net mmnist-frame --out checkpoints/mmnist-frame', 'the shipped frame encoder (see its RECIPE.md)')
    .example('driftlab eval train-features --net mmnist-clip --out checkpoints/mmnist-clip --init-frame checkpoints/mmnist-frame', 'the shipped clip encoder (see its RECIPE.md)'),
  handler: async (a) => {
    const { trainVideoFeatureNet } = await import('../eval/train-video-features.js');
    const info = await initBackend(a.backend as BackendName);
    const r = await trainVideoFeatureNet({
      net: a.net, out: a.out, seed: a.seed, steps: positiveInt('steps', a.steps), batchSize: positiveInt('batch-size', a.batchSize),
      lr: nonNegative('lr', a.lr), warmup: a.warmup === undefined ? undefined : Math.floor(nonNegative('warmup', a.warmup)),
      weightDecay: nonNegative('weight-decay', a.weightDecay), heldout: a.heldout === undefined ? undefined : positiveInt('heldout', a.heldout),
      evalEvery: Math.floor(nonNegative('eval-every', a.evalEvery)), overwrite: a.overwrite, initFrame: a.initFrame,
      command: `driftlab ${process.argv.slice(2).join(' ')}`, backendLine: info.line,
    });
    const h = r.heldout;
    process.stdout.write(`held-out (${h.n} ${a.net === 'mmnist-frame' ? 'frames' : 'clips'}, test digit split): digit-presence bit accuracy ${pct(h.presenceBitAccuracy)}, `
      + `set accuracy ${pct(h.presenceSetAccuracy)}, F1 ${h.presenceF1.toFixed(4)}, count accuracy ${pct(h.countAccuracy)}, `
      + `position error ${h.positionErrorPx.toFixed(2)} px${h.velocityErrorPx !== null ? `, velocity error ${h.velocityErrorPx.toFixed(3)} px/frame` : ''} (64x64 canvas)\n`
      + `${r.initFrame ? `per-frame stack initialised from ${r.initFrame.from} (${r.initFrame.copied.length} parameters copied)\n` : ''}`
      + `${r.steps} steps in ${r.seconds.toFixed(0)} s; ${r.parameters} parameters\n${a.net}: ${a.out}\n`);
  },
};

const fidCommand: CommandModule<any, any> = {
  command: 'fid',
  describe: 'sample a checkpoint and report FID with the driftlab MNIST classifier (beside a real-vs-real baseline), sample accuracy and confidence',
  builder: (y) => y
    .option('ckpt', { type: 'string', demandOption: true, describe: 'image checkpoint folder (28x28 digits)' })
    .option('n', { type: 'number', default: 1000, describe: 'samples to draw (labels cycle 0..9 for class-conditional models)' })
    .option('batch', { type: 'number', default: 100, describe: 'samples per forward pass' })
    .option('sampler', { choices: SAMPLERS, default: 'ddim' })
    .option('steps', { type: 'number', default: 50, describe: 'denoising steps' })
    .option('eta', { type: 'number', default: 0, describe: 'DDIM eta' })
    .option('guidance', { type: 'number', default: 2, describe: 'classifier-free guidance scale (1 = none)' })
    .option('weights', { choices: ['ema', 'model'], default: 'ema' })
    .option('clip-x0', { type: 'boolean', default: true, describe: 'clip predicted x0 to [-1,1] at every step (as driftlab sample)' })
    .option('engine', { choices: ['auto', 'tfjs', 'onnx'], default: 'auto', describe: 'forward engine for sampling' })
    .option('classifier', { type: 'string', default: DEFAULT_CLASSIFIER_DIR, describe: 'MNIST classifier folder' })
    .option('real', { choices: REAL_POOLS, default: 'all', describe: 'real digits for reference + baseline: all 10,000 bundled, or the classifier\'s held-out 2,000' })
    .option('json', { type: 'boolean', default: false }),
  handler: async (a) => {
    const n = positiveInt('n', a.n);
    if (n < 2) throw new DriftlabError(`--n must be at least 2 for a covariance, got ${n}`);
    const steps = positiveInt('steps', a.steps), batch = positiveInt('batch', a.batch);
    const { evaluateCheckpoint, prepareReference } = await fidModule();
    await initBackend(a.backend as BackendName);
    const clf = await loadClassifier(a.classifier);
    try {
      const ref = prepareReference(clf, a.real as RealPool, a.seed);
      const progress = a.json ? null : new Progress({ total: n, label: `sample ${a.sampler}-${steps} w=${a.guidance}`, unit: 'img' });
      const r = await evaluateCheckpoint(clf, {
        ckpt: a.ckpt, n, batch, sampler: a.sampler as SamplerName, steps, eta: a.eta, guidance: a.guidance, seed: a.seed,
        weights: a.weights, engine: a.engine, pool: a.real as RealPool, clipX0: a.clipX0, onBatch: progress ? (done) => progress.tick(done - progress.count) : undefined,
      }, ref);
      const clfAcc = (clf.config.results as any)?.heldoutAccuracy;
      if (a.json) {
        process.stdout.write(JSON.stringify({
          metric: MNIST_FID_NAME,
          fid_driftlab_mnist: r.fid,
          fid_driftlab_mnist_real_baseline: r.baseline,
          classifier_accuracy: r.accuracy ?? null,
          classifier_accuracy_per_class: r.perClass?.map(finiteOrNull) ?? null,
          mean_classifier_confidence: r.confidence,
          predicted_class_histogram: r.predictedHistogram,
          n, baseline_n: r.baselineN, reference: { source: 'bundled-mnist', pool: a.real, reference_n: ref.sizeB, seed: a.seed },
          ckpt: a.ckpt, weights: a.weights, sampler: a.sampler, steps, eta: a.eta, guidance: a.guidance, clip_x0: r.clipX0, seed: a.seed,
          classifier: { dir: a.classifier, heldout_accuracy: clfAcc ?? null },
          seconds: r.seconds,
        }) + '\n');
        return;
      }
      const out = process.stdout;
      out.write(`${MNIST_FID_NAME}: ${r.fid.toFixed(3)}\n`);
      out.write(`  real-vs-real baseline (${r.baselineN} real digits vs the same ${ref.sizeB}-digit reference, disjoint): ${r.baseline.toFixed(3)}\n`);
      if (r.accuracy !== undefined) out.write(`classifier accuracy of class-conditional samples w.r.t. their labels: ${pct(r.accuracy)}\n`);
      else out.write('unconditional checkpoint: no labels to check; predicted-class histogram: ' + r.predictedHistogram.map((h) => h.toFixed(3)).join(' ') + '\n');
      out.write(`mean classifier confidence (max softmax probability): ${r.confidence.toFixed(4)}\n`);
      out.write(`${n} samples, ${a.sampler} ${steps} steps, eta ${a.eta}, guidance ${a.guidance}, seed ${a.seed}, ${a.weights} weights; sampling ${r.seconds.sampling.toFixed(0)} s\n`);
      out.write(`classifier ${a.classifier}${clfAcc !== undefined ? ` (held-out accuracy ${pct(clfAcc)})` : ''}; reference: ${a.real} bundled digits\n`);
    } finally {
      clf.dispose();
    }
  },
};

export const evalCommand: CommandModule<any, any> = {
  command: 'eval',
  describe: 'evaluation: frechet, frames, fid, context-use, train-classifier, train-features',
  builder: (y) => y
    .command(frechetCommand)
    .command(framesCommand)
    .command(fidCommand)
    .command(trainClassifierCommand)
    .command(trainFeaturesCommand)
    .command(contextUseCommand)
    .demandCommand(1, 'name an eval command: frechet, frames, fid, context-use, train-classifier or train-features'),
  handler: () => undefined,
};
