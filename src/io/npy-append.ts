/**
 * A .npy file whose first axis grows as frames are appended (rollouts stream their frames to
 * disk this way and stay valid after a kill). The format itself: npy.ts.
 */
import { promises as fsp } from 'node:fs';
import { DriftlabError } from '../util/errors.js';
import { DESCR, ITEMSIZE, MAGIC, buildHeader, bytesOf, checkHost, dataMatches, numel, shapeRepr, type NpyData, type NpyDtype } from './npy.js';

/**
 * Streams frames into a .npy file whose first axis grows: shape [count, ...innerShape].
 * Every append writes the data, then rewrites the header's shape in place (the header keeps
 * fixed, 64-aligned room for a 21-digit count), so a killed process leaves a valid file
 * holding every completed append. close() fsyncs. Appends are serialised internally.
 */
export class NpyAppendWriter {
  private count = 0;
  private closed = false;
  private chain: Promise<void> = Promise.resolve();
  private readonly frameSize: number;

  private constructor(
    readonly path: string,
    readonly dtype: NpyDtype,
    readonly innerShape: readonly number[],
    private readonly fh: fsp.FileHandle,
    private readonly headerSize: number,
  ) {
    this.frameSize = numel(innerShape);
  }

  static async create(
    path: string,
    dtype: NpyDtype,
    innerShape: readonly number[],
    opts: { overwrite?: boolean } = {},
  ): Promise<NpyAppendWriter> {
    checkHost();
    if (!Object.prototype.hasOwnProperty.call(DESCR, dtype)) {
      throw new DriftlabError(`unsupported npy dtype ${String(dtype)}; use uint8, float32, float64, int32 or int64`);
    }
    if (!innerShape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new DriftlabError(`invalid npy frame shape ${JSON.stringify(innerShape)}; dims must be non-negative integers`);
    }
    // Header sized for count=0 plus numpy's 21-digit growth room; later counts fit in place.
    const header = buildHeader(dtype, [0, ...innerShape]);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(path, opts.overwrite ? 'w' : 'wx', 0o644);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException)?.code;
      if (code === 'EEXIST') throw new DriftlabError(`${path} already exists; pass --overwrite to replace it or choose another path`);
      if (code === 'ENOENT') throw new DriftlabError(`cannot create ${path}: its directory does not exist; create it first`);
      throw new DriftlabError(`cannot create ${path}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    }
    await fh.write(header, 0, header.length, 0);
    return new NpyAppendWriter(path, dtype, innerShape.slice(), fh, header.length);
  }

  /**
   * Reopen a file written by an append writer (e.g. after a kill) keeping only its first
   * `length` frames, and continue appending. The dtype and frame shape must match.
   */
  static async reopen(path: string, dtype: NpyDtype, innerShape: readonly number[], length: number): Promise<NpyAppendWriter> {
    checkHost();
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(path, 'r+');
    } catch {
      throw new DriftlabError(`cannot reopen ${path} to resume; it is missing or unreadable`);
    }
    try {
      const head = new Uint8Array(Math.min(65536, (await fh.stat()).size));
      await fh.read(head, 0, head.length, 0);
      if (!MAGIC.every((b, k) => head[k] === b) || head[6] !== 1) throw new DriftlabError(`${path} is not a .npy v1 file written by driftlab; cannot resume it`);
      const headerSize = 10 + new DataView(head.buffer).getUint16(8, true);
      const text = new TextDecoder('latin1').decode(head.subarray(10, headerSize));
      const descr = /'descr':\s*'([^']+)'/.exec(text)?.[1];
      const shape = /'shape':\s*\(([^)]*)\)/.exec(text)?.[1].split(',').map((d) => d.trim()).filter(Boolean).map(Number);
      if (descr !== DESCR[dtype] || !shape || shape.slice(1).join(',') !== innerShape.join(',')) {
        throw new DriftlabError(`${path} holds ${descr} frames of shape [${shape?.slice(1)}], not ${dtype} [${innerShape}]; cannot resume it`);
      }
      if (shape[0] < length) throw new DriftlabError(`${path} holds ${shape[0]} frames, fewer than the ${length} the run recorded; cannot resume it`);
      const w = new NpyAppendWriter(path, dtype, innerShape.slice(), fh, headerSize);
      await fh.truncate(headerSize + length * numel(innerShape) * ITEMSIZE[dtype]);
      w.count = length;
      const h = buildHeader(dtype, [length, ...innerShape], headerSize);
      await fh.write(h, 0, h.length, 0);
      return w;
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** Number of frames written so far (first-axis length). */
  get length(): number {
    return this.count;
  }

  /** Append one or more frames (data.length must be a multiple of prod(innerShape)). */
  append(data: NpyData): Promise<void> {
    if (this.closed) return Promise.reject(new DriftlabError(`cannot append to ${this.path}: writer is closed`));
    if (!dataMatches(this.dtype, data)) {
      return Promise.reject(new DriftlabError(`cannot append ${data.constructor.name} data to ${this.dtype} file ${this.path}`));
    }
    const frames = this.frameSize === 0 ? 0 : data.length / this.frameSize;
    if (!Number.isInteger(frames) || (this.frameSize === 0 && data.length !== 0)) {
      return Promise.reject(new DriftlabError(`cannot append ${data.length} values to ${this.path}: not a whole number of frames of shape ${shapeRepr(this.innerShape)}`));
    }
    const bytes = bytesOf(data).slice(); // snapshot: caller may reuse its buffer
    const run = async () => {
      const pos = this.headerSize + this.count * this.frameSize * ITEMSIZE[this.dtype];
      await this.fh.write(bytes, 0, bytes.length, pos);
      this.count += frames;
      const h = buildHeader(this.dtype, [this.count, ...this.innerShape], this.headerSize);
      await this.fh.write(h, 0, h.length, 0);
    };
    const p = this.chain.then(run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Flush to disk and close. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain;
    try {
      await this.fh.sync();
    } finally {
      await this.fh.close();
    }
  }
}
