/**
 * "FID with the driftlab MNIST classifier" for image checkpoints, plus what the classifier says
 * about class-conditional samples (accuracy w.r.t. their labels, mean max-probability).
 *
 * Reference statistics and the real-against-real baseline: the real digits of a pool (all
 * 10,000 bundled digits, or only the classifier's 2,000 held-out ones) are split by a seeded
 * permutation into two disjoint halves A and B. B is the reference every FID is taken against;
 * the baseline is FID(A[:n], B) with the same n as the samples (or all of A if n > |A|), so the
 * two numbers share reference set and sample size, and the baseline shows how small "small" is
 * (FID is biased upwards at small n).
 *
 * Split into a reusable reference (prepareReference, computed once) and scoring of any image
 * set (scoreImages), so sweeps can score many sample sets against one reference.
 */
import { loadBundledMnist } from '../../datasets/mnist/index.js';
import { generate, loadPipeline } from '../diffusion/pipeline.js';
import type { EngineChoice } from '../engine/select.js';
import { SamplerName } from '../diffusion/samplers.js';
import { DriftlabError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { MnistClassifier, MNIST_FID_NAME, scoreProbs, splitIndices } from './features/mnist-classifier.js';
import { GaussianStats, frechetDistance, gaussianStats } from './frechet.js';

export type RealPool = 'all' | 'heldout';
export const REAL_POOLS: RealPool[] = ['all', 'heldout'];

export interface Reference {
  pool: RealPool;
  /** statistics of half B (the reference) */
  stats: GaussianStats;
  /** features of half A, [|A|, D], for the baseline */
  featuresA: Float32Array;
  sizeA: number;
  sizeB: number;
  seed: number;
}

/** Real digits at `indices` as float32 [N,28,28] in [0,1]. */
function realImages(images: Uint8Array, indices: ArrayLike<number>, px: number): Float32Array {
  const x = new Float32Array(indices.length * px);
  for (let i = 0; i < indices.length; i++) {
    const o = indices[i] * px;
    for (let j = 0; j < px; j++) x[i * px + j] = images[o + j] / 255;
  }
  return x;
}

export function prepareReference(clf: MnistClassifier, pool: RealPool = 'all', seed = 0): Reference {
  if (!REAL_POOLS.includes(pool)) throw new DriftlabError(`unknown real-digit pool '${pool}'; choose all or heldout`);
  const data = loadBundledMnist();
  const px = data.rows * data.cols;
  const idx = pool === 'all' ? Int32Array.from({ length: data.n }, (_, i) => i) : splitIndices(data.n, clf.config.split).heldout.slice();
  new Rng(`fid-reference/${pool}/${seed}`).shuffle(idx);
  const half = Math.floor(idx.length / 2);
  const A = idx.subarray(0, half), B = idx.subarray(half);
  const fb = clf.features(realImages(data.images, B, px), B.length);
  const featuresA = clf.features(realImages(data.images, A, px), A.length);
  return { pool, stats: gaussianStats(fb, B.length, clf.dim), featuresA, sizeA: A.length, sizeB: B.length, seed };
}

export interface ImageScore {
  /** FID of the images against reference half B */
  fid: number;
  /** FID(A[:baselineN], B) */
  baseline: number;
  baselineN: number;
  n: number;
  /** only when labels were given */
  accuracy?: number;
  confidence: number;
  perClass?: number[];
  /** fraction of samples the classifier assigns to each class */
  predictedHistogram: number[];
}

/** Score images [N,28,28] in [0,1] (labels [N] for class-conditional samples). */
export function scoreImages(clf: MnistClassifier, ref: Reference, images: Float32Array, n: number, labels?: ArrayLike<number>): ImageScore {
  if (n < 2) throw new DriftlabError(`FID needs at least 2 samples, got --n ${n}`);
  const { features, probs } = clf.run(images, n);
  const fid = frechetDistance(gaussianStats(features, n, clf.dim), ref.stats).frechet;
  const baselineN = Math.min(n, ref.sizeA);
  const baseline = frechetDistance(gaussianStats(ref.featuresA.subarray(0, baselineN * clf.dim), baselineN, clf.dim), ref.stats).frechet;
  const K = clf.numClasses;
  const hist = new Array(K).fill(0);
  let conf = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let k = 1; k < K; k++) if (probs[i * K + k] > probs[i * K + best]) best = k;
    hist[best] += 1 / n;
    conf += probs[i * K + best] / n;
  }
  const out: ImageScore = { fid, baseline, baselineN, n, confidence: conf, predictedHistogram: hist };
  if (labels) {
    const s = scoreProbs(probs, labels, K);
    out.accuracy = s.accuracy;
    out.perClass = s.perClass;
  }
  return out;
}

export interface FidOptions {
  ckpt: string;
  n: number;
  batch: number;
  sampler: SamplerName;
  steps: number;
  eta: number;
  guidance: number;
  seed: number;
  weights: 'ema' | 'model';
  /** forward engine (default tfjs, the reference) */
  engine?: EngineChoice;
  pool: RealPool;
  /**
   * clip the predicted x0 to [-1,1] at every step (default true, as `driftlab sample`). Without
   * it the first trailing step (t = T-1, where abar is ~4e-5 linear and ~2e-9 cosine) divides
   * the model's error by sqrt(abar) and the sample never recovers.
   */
  clipX0?: boolean;
  onBatch?: (done: number, total: number) => void;
}

export interface FidReport extends ImageScore {
  metric: string;
  conditional: boolean;
  clipX0: boolean;
  seconds: { sampling: number; total: number };
}

/** Sample n digits from a checkpoint (labels 0,1,..,9,0,.. if class-conditional) and score them. */
export async function evaluateCheckpoint(clf: MnistClassifier, o: FidOptions, ref?: Reference): Promise<FidReport> {
  const t0 = Date.now();
  const reference = ref ?? prepareReference(clf, o.pool, o.seed);
  const p = await loadPipeline(o.ckpt, o.weights, { engine: o.engine });
  try {
    const c = p.config.model;
    if (c.sampleSize !== 28 || c.outChannels !== 1) {
      throw new DriftlabError(`${o.ckpt} makes ${c.sampleSize}x${c.sampleSize}x${c.outChannels} images; FID with the MNIST classifier needs 28x28x1 digits`);
    }
    const K = c.numClasses;
    if (K > 0 && K !== clf.numClasses) throw new DriftlabError(`${o.ckpt} is conditioned on ${K} classes, but the MNIST classifier knows ${clf.numClasses} digits`);
    const labels = K > 0 ? Int32Array.from({ length: o.n }, (_, i) => i % K) : undefined;
    const ts = Date.now();
    const clipX0 = o.clipX0 ?? true;
    const g = await generate(p, {
      n: o.n, batch: o.batch, sampler: o.sampler, steps: o.steps, eta: o.eta, guidance: o.guidance, labels, seed: o.seed, onBatch: o.onBatch,
      clipX0,
    });
    const sampling = (Date.now() - ts) / 1000;
    const score = scoreImages(clf, reference, g.images, o.n, labels);
    return { metric: MNIST_FID_NAME, conditional: K > 0, clipX0, ...score, seconds: { sampling, total: (Date.now() - t0) / 1000 } };
  } finally {
    p.dispose();
  }
}
