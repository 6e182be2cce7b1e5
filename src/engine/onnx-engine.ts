/**
 * The onnx engine: an exported U-Net run by onnxruntime-node on all cores, behind the same
 * Denoiser the samplers use for tfjs. Noise and the sampler steps stay on tfjs (host Rng), so
 * both engines draw identical samples up to float rounding.
 *
 * onnxruntime-node is optional at run time: it is loaded on first use (dynamic import), and a
 * missing package or an unusable native binding is reported as a reason, never thrown.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import type { UNetConfig } from '../diffusion/config.js';
import type { Denoiser } from '../diffusion/samplers.js';
import { DriftlabError } from '../util/errors.js';
import { CpuInt8, Int8Scheme, cpuInt8, int8Line, measuredCpuInt8 } from './int8-scheme.js';
import { DataType, NCHWC_DOMAIN, encodeModel, readModel } from './onnx-proto.js';

export type Ort = typeof import('onnxruntime-node');
type Session = import('onnxruntime-node').InferenceSession;

export interface OrtStatus {
  ort: Ort | null;
  version: string;
  /** why it is unavailable (one line) */
  error?: string;
}

let loading: Promise<OrtStatus> | null = null;

/** Load onnxruntime-node once per process and prove the binding works on a one-node model. */
export function loadOrt(): Promise<OrtStatus> {
  loading ??= (async () => {
    let ort: Ort;
    try {
      const m = (await import('onnxruntime-node')) as Ort & { default?: Ort };
      ort = m.default?.InferenceSession ? m.default : m;
    } catch (e) {
      const msg = firstLine(e);
      return { ort: null, version: '', error: /Cannot find (package|module) 'onnxruntime-node'/.test(msg) ? 'onnxruntime-node is not installed' : `onnxruntime-node failed to load (${msg})` };
    }
    const version = ort.env?.versions?.node ?? '?';
    try {
      const s = await ort.InferenceSession.create(probeModel(), { logSeverityLevel: 3 });
      const r = await s.run({ a: new ort.Tensor('float32', Float32Array.of(1, 2), [2]) });
      if ((r.b.data as Float32Array)[1] !== 2) throw new Error('probe model gave a wrong result');
      await s.release();
    } catch (e) {
      return { ort: null, version, error: `onnxruntime-node ${version} is installed but unusable (${firstLine(e)})` };
    }
    return { ort, version };
  })();
  return loading;
}

/** the driftlab.quantization metadata of a file from `driftlab export --quantize` (engine/quantize.ts) */
function quantization(meta: string | undefined): { mode: string; conv: string; scheme: Int8Scheme } | null {
  if (!meta) return null;
  try {
    const q = JSON.parse(meta);
    // files written before issue #14 name no scheme: they hold full-range weights
    return { mode: String(q.mode), conv: String(q.conv), scheme: q.scheme === 'reduce-range' ? 'reduce-range' : 'full-range' };
  } catch {
    return { mode: '?', conv: '?', scheme: 'full-range' };
  }
}

const firstLine = (e: unknown) => String((e as Error)?.message ?? e).split('\n')[0].slice(0, 200);

/** b = Identity(a), a: [n] float32 */
function probeModel(): Uint8Array {
  const vi = (name: string) => ({ name, elemType: DataType.FLOAT, dims: ['n'] });
  return encodeModel({
    irVersion: 8, opsetImports: [{ domain: '', version: 17 }], producerName: 'driftlab', producerVersion: '', docString: '', metadata: {},
    graph: { name: 'probe', nodes: [{ name: 'id', opType: 'Identity', domain: '', inputs: ['a'], outputs: ['b'], attributes: [] }], initializers: [], inputs: [vi('a')], outputs: [vi('b')] },
  });
}

let u8s8: Promise<boolean | null> | null = null;

/**
 * Does onnxruntime's u8s8 integer kernel saturate on this CPU, as onnxruntime sees it (CPUID, not
 * /proc/cpuinfo)? One MatMulInteger of uint8 255s by int8 127s, K = 32: exact int32 sums give
 * 32 * 255 * 127 = 1,036,320; vpmaddubsw's int16 pair sums (AVX2 / AVX-512BW without VNNI) give
 * 16 * 32,767 = 524,272. Once per process, a few ms; null when the check cannot run.
 */
export function probeU8S8Saturation(ort: Ort): Promise<boolean | null> {
  u8s8 ??= (async () => {
    const K = 32;
    try {
      const s = await ort.InferenceSession.create(encodeModel({
        irVersion: 8, opsetImports: [{ domain: '', version: 17 }], producerName: 'driftlab', producerVersion: '', docString: '', metadata: {},
        graph: {
          name: 'u8s8', nodes: [{ name: 'mm', opType: 'MatMulInteger', domain: '', inputs: ['a', 'w'], outputs: ['y'], attributes: [] }],
          initializers: [{ name: 'w', dims: [K, 1], dataType: DataType.INT8, rawData: new Uint8Array(K).fill(127) }],
          inputs: [{ name: 'a', elemType: DataType.UINT8, dims: [1, K] }], outputs: [{ name: 'y', elemType: DataType.INT32, dims: [1, 1] }],
        },
      }), { intraOpNumThreads: 1, logSeverityLevel: 3 });
      try {
        const y = Number((await s.run({ a: new ort.Tensor('uint8', new Uint8Array(K).fill(255), [1, K]) })).y.data[0]);
        return y === K * 255 * 127 ? false : y === (K / 2) * 32767 ? true : null;
      } finally {
        await s.release();
      }
    } catch {
      return null;
    }
  })();
  return u8s8;
}

let nchwc: Promise<number> | null = null;

/**
 * The channel block of onnxruntime's blocked-layout (NCHWc) CPU kernels on this CPU, as
 * onnxruntime sees it (MLAS picks 8 for AVX2, 16 for AVX-512), or 0 where they are absent (no
 * such kernels for the CPU, or a build without the com.microsoft.nchwc ops): one ReorderInput of
 * 4 channels, whose output pads the channels to one block. Once per process, a few ms. Training
 * graphs (engine/train-graph.ts) use it to run Convs on non-constant weights through those
 * kernels; the graph is then built for this block size, and the numbers are the same (to float
 * rounding) whatever the block (test/engine/nchwc.test.ts).
 */
export function nchwcBlockSize(ort: Ort): Promise<number> {
  nchwc ??= (async () => {
    try {
      const vi = (name: string, dims: (number | string)[]) => ({ name, elemType: DataType.FLOAT, dims });
      const s = await ort.InferenceSession.create(encodeModel({
        irVersion: 8, opsetImports: [{ domain: '', version: 17 }, { domain: NCHWC_DOMAIN, version: 1 }], producerName: 'driftlab', producerVersion: '', docString: '', metadata: {},
        graph: {
          name: 'nchwc', nodes: [{ name: 'r', opType: 'ReorderInput', domain: NCHWC_DOMAIN, inputs: ['x'], outputs: ['y'], attributes: [] }],
          initializers: [], inputs: [vi('x', [1, 4, 1, 1])], outputs: [vi('y', [1, 'c', 1, 1])],
        },
      }), { intraOpNumThreads: 1, logSeverityLevel: 3 });
      try {
        const b = Number((await s.run({ x: new ort.Tensor('float32', new Float32Array(4), [1, 4, 1, 1]) })).y.dims[1]);
        return Number.isInteger(b) && b >= 4 && (b & (b - 1)) === 0 ? b : 0;
      } finally {
        await s.release();
      }
    } catch {
      return 0;
    }
  })();
  return nchwc;
}

/**
 * Threads and the checked positive count, and the session options every driftlab session uses:
 * `threads` intra-op threads (default: every core), one inter-op thread, sequential execution,
 * every graph optimisation, warnings off; `extra` adds to them (providers, session config).
 */
export function cpuSessionOptions(threads: number | undefined, extra: Record<string, unknown> = {}): { threads: number; options: Record<string, unknown> } {
  const n = threads ?? os.availableParallelism();
  if (!Number.isInteger(n) || n < 1) throw new DriftlabError(`--threads must be a positive integer, got ${n}`);
  return { threads: n, options: { intraOpNumThreads: n, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', logSeverityLevel: 3, ...extra } };
}

/**
 * Session options added for training graphs: no memory pattern. onnxruntime's memory pattern
 * plans one block for a whole run's intermediates; for the training graphs (thousands of nodes,
 * every activation kept for the backward pass) it raised peak RSS by about 420 MB and was slower
 * (ab-train-step: 0.89-0.92 of the wall time without it; docs/BENCHMARKS.md session 13).
 */
export const TRAIN_SESSION_EXTRA = { enableMemPattern: false } as const;

export interface OnnxUNetOptions {
  /** intra-op threads (default: all cores) */
  threads?: number;
}

/** An exported U-Net in an onnxruntime session. */
export class OnnxUNet {
  private constructor(
    private readonly ort: Ort, private readonly session: Session, readonly config: UNetConfig,
    readonly threads: number, readonly version: string,
    /** 'float32', or 'int8 dynamic' / 'int8 static' for files from `driftlab export --quantize` */
    readonly precision: string,
    /** int8 files: their weight scheme (int8-scheme.ts); null for float32 */
    readonly scheme: Int8Scheme | null,
    /** int8 files: the CPU's int8 kernels, from /proc/cpuinfo checked against onnxruntime (measuredCpuInt8) */
    readonly cpu: CpuInt8 | null = null,
  ) {}

  /**
   * model: the bytes of exportOnnx(), or the path of a .onnx file written by `driftlab export`.
   * config: the model it must be; for files it is read from the file's metadata when omitted.
   */
  static async create(model: Uint8Array | string, config?: UNetConfig, opts: OnnxUNetOptions = {}): Promise<OnnxUNet> {
    const status = await loadOrt();
    if (!status.ort) throw new DriftlabError(`${status.error}; the onnx engine needs it (npm install onnxruntime-node), or use --engine tfjs`);
    const what = typeof model === 'string' ? model : 'the exported model';
    let bytes: Uint8Array;
    if (typeof model === 'string') {
      if (!fs.existsSync(model)) throw new DriftlabError(`${model} not found; write one with 'driftlab export --ckpt DIR --out ${model}'`);
      bytes = fs.readFileSync(model);
    } else bytes = model;
    const proto = readModel(bytes, what); // one clear line for truncated or foreign files
    const meta = proto.metadata['driftlab.model'];
    let fileConfig: UNetConfig | undefined;
    try { fileConfig = meta ? JSON.parse(meta) : undefined; } catch { /* reported below */ }
    if (!fileConfig) throw new DriftlabError(`${what} carries no driftlab model config (metadata 'driftlab.model'); export it with 'driftlab export'`);
    if (config && JSON.stringify(fileConfig) !== JSON.stringify(config)) {
      throw new DriftlabError(`${what} was exported from another model config than this checkpoint's; re-export it from this checkpoint`);
    }
    const names = proto.graph.inputs.map((i) => i.name).sort().join(',');
    const want = (fileConfig.numClasses > 0 ? ['labels', 't', 'x'] : ['t', 'x']).join(',');
    if (names !== want || !proto.graph.outputs.some((o) => o.name === 'out')) {
      throw new DriftlabError(`${what} has inputs [${names}] and outputs [${proto.graph.outputs.map((o) => o.name)}]; expected [${want}] -> out`);
    }
    const quant = quantization(proto.metadata['driftlab.quantization']);
    // int8 weights that feed float Convs: let constant folding dequantize them once at load
    // (onnxruntime keeps DequantizeLinear otherwise, and its fast NCHWc Conv needs constant weights)
    const { threads, options } = cpuSessionOptions(opts.threads, quant?.conv === 'weight-only' ? { extra: { session: { disable_quant_qdq: '1' } } } : {});
    let session: Session;
    try {
      session = await status.ort.InferenceSession.create(bytes, options as any);
    } catch (e) {
      throw new DriftlabError(`onnxruntime could not load ${what}: ${firstLine(e)}`);
    }
    const cpu = quant ? measuredCpuInt8(cpuInt8(), await probeU8S8Saturation(status.ort)) : null;
    return new OnnxUNet(status.ort, session, fileConfig, threads, status.version, quant ? `int8 ${quant.mode}` : 'float32', quant?.scheme ?? null, cpu);
  }

  /** One line for humans: which engine, how many threads. */
  get line(): string {
    const int8 = this.precision === 'float32' ? '' : `, ${this.precision} model`;
    return `engine onnxruntime-node ${this.version} · cpu, ${this.threads} intra-op thread${this.threads > 1 ? 's' : ''}${int8} (sampler steps on tfjs ${tf.getBackend()})`;
  }

  /** int8 files: one line naming the scheme and the CPU features onnxruntime's kernels use; else null */
  get int8Line(): string | null {
    return this.scheme ? int8Line(this.precision.replace(/^int8 /, ''), this.scheme, this.cpu ?? cpuInt8()) : null;
  }

  /** x: [B,H,W,C] values, t: [B], labels: [B] -> out [B,H,W,Cout] values */
  async run(x: Float32Array, B: number, t: Float32Array, labels?: Int32Array): Promise<Float32Array> {
    const c = this.config, S = c.sampleSize;
    const feeds: Record<string, InstanceType<Ort['Tensor']>> = {
      x: new this.ort.Tensor('float32', x, [B, S, S, c.inChannels]),
      t: new this.ort.Tensor('float32', t, [B]),
    };
    if (c.numClasses > 0) {
      const lab = new BigInt64Array(B).fill(BigInt(c.numClasses)); // absent labels: the null class
      if (labels) for (let i = 0; i < B; i++) lab[i] = BigInt(labels[i]);
      feeds.labels = new this.ort.Tensor('int64', lab, [B]);
    }
    const r = await this.session.run(feeds);
    return r.out.data as Float32Array;
  }

  /** The sampler's view: (x_t, t, labels) -> network output, as a new tfjs tensor. */
  denoiser(): Denoiser {
    const c = this.config;
    return async (x, t, labels) => {
      const B = x.shape[0];
      const out = await this.run((await x.data()) as Float32Array, B, typeof t === 'number' ? new Float32Array(B).fill(t) : t, labels);
      return tf.tensor4d(out, [B, c.sampleSize, c.sampleSize, c.outChannels]);
    };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
