/**
 * Training of the driftlab MNIST classifier on a seeded split of the 10,000 bundled digits
 * (default 8,000 train / 2,000 held out). Cross-entropy, AdamW on flat float32 parameters
 * (diffusion/optim.ts), linear warm-up then cosine decay, random shifts of up to --shift pixels
 * as augmentation. All randomness (split, init, order, shifts) comes from driftlab's Rng.
 *
 * Writes DIR/config.json + DIR/model.safetensors (mnist-classifier.ts) and DIR/train-log.jsonl
 * (one line per step; one 'eval' line per epoch with held-out accuracy).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadBundledMnist } from '../../datasets/mnist/index.js';
import { AdamW, DEFAULT_ADAMW } from '../diffusion/optim.js';
import { DriftlabError } from '../util/errors.js';
import { Progress } from '../util/progress.js';
import { Rng } from '../util/rng.js';
import {
  CLASSIFIER_FORMAT, ClassifierConfig, DEFAULT_ARCH, MnistClassifier, SplitSpec, classifierParamSpecs,
  initClassifierParams, saveClassifier, scoreProbs, splitIndices,
} from './features/mnist-classifier.js';

export interface ClassifierTrainOptions {
  out: string;
  seed: number;
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  /** max random translation in pixels (each axis, integer, zero fill) */
  shift: number;
  /** digits held out for testing (the rest train); split seeded by splitSeed */
  heldout: number;
  splitSeed: number;
  warmup: number;
  overwrite?: boolean;
  quiet?: boolean;
  /** recorded in config.json */
  command?: string;
  backendLine?: string;
}

export interface ClassifierTrainResult {
  steps: number;
  seconds: number;
  heldoutAccuracy: number;
  heldoutN: number;
  perClass: number[];
  lastLoss: number;
}

/** Copy image idx (uint8 [28,28]) into dst at offset, shifted by (dy,dx), as floats in [0,1]. */
function putShifted(src: Uint8Array, idx: number, S: number, dy: number, dx: number, dst: Float32Array, off: number): void {
  const px = S * S;
  for (let y = 0; y < S; y++) {
    const sy = y - dy;
    for (let x = 0; x < S; x++) {
      const sx = x - dx;
      dst[off + y * S + x] = sy >= 0 && sy < S && sx >= 0 && sx < S ? src[idx * px + sy * S + sx] / 255 : 0;
    }
  }
}

/** Score the classifier on the digits at `indices`. */
export function evaluateOn(net: MnistClassifier, images: Uint8Array, labels: Uint8Array, indices: Int32Array) {
  const S = net.config.arch.inputSize;
  const x = new Float32Array(indices.length * S * S);
  indices.forEach((idx, i) => putShifted(images, idx, S, 0, 0, x, i * S * S));
  const { probs } = net.run(x, indices.length);
  return scoreProbs(probs, Array.from(indices, (i) => labels[i]), net.numClasses);
}

export async function trainClassifier(o: ClassifierTrainOptions): Promise<ClassifierTrainResult> {
  for (const [k, v] of [['epochs', o.epochs], ['batch-size', o.batchSize], ['heldout', o.heldout]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new DriftlabError(`--${k} must be a positive integer, got ${v}`);
  }
  if (!(o.lr > 0)) throw new DriftlabError(`--lr must be > 0, got ${o.lr}`);
  if (!Number.isInteger(o.shift) || o.shift < 0 || o.shift > 8) throw new DriftlabError(`--shift must be an integer in 0..8, got ${o.shift}`);
  if (fs.existsSync(path.join(o.out, 'model.safetensors')) && !o.overwrite) {
    throw new DriftlabError(`${o.out} already holds a classifier; pass --overwrite to replace it or choose another --out`);
  }
  const data = loadBundledMnist();
  if (o.heldout >= data.n) throw new DriftlabError(`--heldout must be below the ${data.n} bundled digits, got ${o.heldout}`);
  const split: SplitSpec = { source: 'bundled-mnist', seed: o.splitSeed, train: data.n - o.heldout, heldout: o.heldout };
  const { train, heldout } = splitIndices(data.n, split);
  const arch = { ...DEFAULT_ARCH };
  const specs = classifierParamSpecs(arch);
  const config: ClassifierConfig = { format: CLASSIFIER_FORMAT, arch, split };
  const net = new MnistClassifier(config, initClassifierParams(specs, o.seed));
  const sizes = specs.map((s) => s.shape.reduce((p, q) => p * q, 1));
  const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((p, q) => p + q, 0));
  const P = sizes.reduce((p, q) => p + q, 0);
  const params = new Float32Array(P);
  specs.forEach((s, i) => params.set(net.vars.get(s.name)!.dataSync() as Float32Array, offsets[i]));
  const adam = new AdamW(P, { ...DEFAULT_ADAMW, lr: o.lr, weightDecay: o.weightDecay });
  const grad = new Float32Array(P);
  const varList = specs.map((s) => net.vars.get(s.name)!);
  const S = arch.inputSize, K = arch.numClasses, B = o.batchSize;
  const stepsPerEpoch = Math.floor(train.length / B);
  const total = stepsPerEpoch * o.epochs;
  const rng = new Rng(o.seed).fork('mnist-classifier-train');
  fs.mkdirSync(o.out, { recursive: true });
  const log = fs.openSync(path.join(o.out, 'train-log.jsonl'), 'w');
  const progress = o.quiet ? null : new Progress({ total, label: 'train mnist-classifier', unit: 'step', logFraction: 0.05 });
  const started = Date.now();
  const x = new Float32Array(B * S * S);
  const onehot = new Float32Array(B * K);
  let step = 0, lastLoss = NaN;
  let evalRes = { accuracy: NaN, confidence: NaN, perClass: [] as number[] };
  try {
    for (let epoch = 0; epoch < o.epochs; epoch++) {
      const order = rng.shuffle(train.slice());
      for (let b = 0; b < stepsPerEpoch; b++) {
        onehot.fill(0);
        for (let i = 0; i < B; i++) {
          const idx = order[b * B + i];
          const dy = rng.int(2 * o.shift + 1) - o.shift, dx = rng.int(2 * o.shift + 1) - o.shift;
          putShifted(data.images, idx, S, dy, dx, x, i * S * S);
          onehot[i * K + data.labels[idx]] = 1;
        }
        tf.tidy(() => {
          const xt = tf.tensor4d(x, [B, S, S, 1]);
          const yt = tf.tensor2d(onehot, [B, K]);
          const { value, grads } = tf.variableGrads(() => {
            const { logits } = net.forward(xt);
            return tf.neg(tf.mean(tf.sum(tf.mul(yt, tf.logSoftmax(logits)), 1))) as tf.Scalar;
          }, varList);
          lastLoss = value.dataSync()[0];
          varList.forEach((v, i) => grad.set(grads[v.name].dataSync() as Float32Array, offsets[i]));
        });
        if (!Number.isFinite(lastLoss)) throw new DriftlabError(`classifier loss became ${lastLoss} at step ${step + 1}; try a lower --lr`);
        const lr = step < o.warmup ? (o.lr * (step + 1)) / o.warmup
          : 0.5 * o.lr * (1 + Math.cos((Math.PI * (step - o.warmup)) / Math.max(1, total - o.warmup)));
        adam.step(params, grad, lr);
        specs.forEach((s, i) => tf.tidy(() => varList[i].assign(tf.tensor(params.subarray(offsets[i], offsets[i] + sizes[i]), s.shape, 'float32'))));
        step++;
        fs.writeSync(log, JSON.stringify({ step, epoch, loss: Number(lastLoss.toPrecision(5)), lr: Number(lr.toPrecision(4)) }) + '\n');
        progress?.tick(1, { epoch, loss: lastLoss.toFixed(4) });
      }
      evalRes = evaluateOn(net, data.images, data.labels, heldout);
      fs.writeSync(log, JSON.stringify({ eval: 'heldout', epoch, step, accuracy: evalRes.accuracy, seconds: (Date.now() - started) / 1000 }) + '\n');
      if (!o.quiet) process.stderr.write(`driftlab: epoch ${epoch + 1}/${o.epochs}: held-out accuracy ${(100 * evalRes.accuracy).toFixed(2)}% (${heldout.length} digits)\n`);
    }
    progress?.done();
    const seconds = (Date.now() - started) / 1000;
    config.training = {
      seed: o.seed, epochs: o.epochs, batchSize: B, steps: step, optimizer: 'AdamW', lr: o.lr, warmup: o.warmup,
      schedule: 'linear warm-up, cosine decay to 0', weightDecay: o.weightDecay, augmentation: `random integer shifts in [-${o.shift}, ${o.shift}] px, zero fill`,
      command: o.command, backend: o.backendLine, tfjs: tf.version.tfjs, node: process.version, seconds: Math.round(seconds),
      finishedAt: new Date().toISOString(),
    };
    config.results = {
      heldoutAccuracy: evalRes.accuracy, heldoutN: heldout.length, heldoutMeanConfidence: evalRes.confidence,
      heldoutPerClass: evalRes.perClass, lastTrainLoss: lastLoss,
    };
    await saveClassifier(o.out, config, net.getNamed());
    return { steps: step, seconds, heldoutAccuracy: evalRes.accuracy, heldoutN: heldout.length, perClass: evalRes.perClass, lastLoss };
  } finally {
    fs.closeSync(log);
    net.dispose();
  }
}
