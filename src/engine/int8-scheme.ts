/**
 * Which int8 weights an export writes, and what the CPU's int8 kernels do with them (issue #14).
 *
 * onnxruntime multiplies uint8 activations by int8 weights (u8s8) in MLAS kernels chosen from
 * CPUID. With VNNI (vpdpbusd) products are summed straight into int32: exact. Without VNNI, on
 * AVX2 and on AVX-512BW, vpmaddubsw first adds pairs of products into a saturating int16:
 * a1 w1 + a2 w2 with a in [0, 255] and full-range weights w in [-127, 127] reaches 64,770, far
 * past 32,767, and the result is silently clipped (40% errors on a small Gemm; 3x the rms
 * error of a whole U-Net). ARM kernels widen to 16/32 bits and do not saturate.
 *
 *   reduce-range (default)  weights that feed integer kernels (MatMulInteger, ConvInteger, the
 *                           QLinearConv of static QDQ) are 7-bit, [-63, 63]: a pair is at most
 *                           2 * 255 * 63 = 32,130 <= 32,767, so no CPU saturates and every CPU
 *                           computes the same integers. Weight-only Convs (dynamic default:
 *                           int8 -> float Conv) never reach an integer kernel and keep 8 bits.
 *                           onnxruntime's quantizer calls this reduce_range.
 *   full-range              8-bit weights everywhere: exact only with VNNI or on ARM. Kept to
 *                           measure the old files (bench) and to show the saturation (tests).
 */
import * as fs from 'node:fs';
import { DriftlabError } from '../util/errors.js';

export type Int8Scheme = 'reduce-range' | 'full-range';
export const INT8_SCHEMES: Int8Scheme[] = ['reduce-range', 'full-range'];
export const DEFAULT_INT8_SCHEME: Int8Scheme = 'reduce-range';

/** largest |q| of a weight that an integer kernel reads, per scheme */
export function integerWeightQmax(scheme: Int8Scheme): number {
  if (scheme === 'reduce-range') return 63;
  if (scheme === 'full-range') return 127;
  throw new DriftlabError(`unknown int8 scheme '${String(scheme)}'; choose ${INT8_SCHEMES.join(' or ')}`);
}

/** what a file's scheme means, in a few words */
export function describeScheme(scheme: Int8Scheme): string {
  return scheme === 'reduce-range'
    ? 'reduce-range (7-bit weights x uint8 activations in integer kernels: no int16 saturation on any CPU)'
    : 'full-range (8-bit weights x uint8 activations: saturates on x86 without VNNI)';
}

export type Int8Kernel = 'vnni' | 'avx512bw' | 'avx2' | 'x86-other' | 'arm' | 'unknown';

export interface CpuInt8 {
  /** e.g. 'x86-64 avx2 avx512f avx512_vnni', 'arm64', 'unknown (darwin x64)' */
  what: string;
  kernel: Int8Kernel;
  /** true where full-range weights saturate (u8s8 through vpmaddubsw) */
  saturatesFullRange: boolean;
}

const X86_FLAGS = ['avx2', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'amx_int8'];

/**
 * The CPU features onnxruntime's int8 kernels depend on. cpuinfo: the text of /proc/cpuinfo
 * (read on linux when omitted); arch/platform: as in node's process (for tests).
 */
export function cpuInt8(cpuinfo?: string | null, arch: string = process.arch, platform: string = process.platform): CpuInt8 {
  if (arch === 'arm64' || arch === 'arm') return { what: arch, kernel: 'arm', saturatesFullRange: false };
  if (arch !== 'x64' || platform !== 'linux') return { what: `unknown (${platform} ${arch})`, kernel: 'unknown', saturatesFullRange: false };
  if (cpuinfo === undefined) {
    try { cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8'); } catch { cpuinfo = null; }
  }
  const line = cpuinfo?.split('\n').find((l) => /^flags\s*:/.test(l));
  if (!line) return { what: 'x86-64, features unknown (no flags in /proc/cpuinfo)', kernel: 'unknown', saturatesFullRange: false };
  const flags = new Set(line.replace(/^flags\s*:/, '').trim().split(/\s+/));
  const kernel: Int8Kernel = flags.has('avx512_vnni') || flags.has('avx_vnni') ? 'vnni'
    : flags.has('avx512bw') ? 'avx512bw' : flags.has('avx2') ? 'avx2' : 'x86-other';
  const have = X86_FLAGS.filter((f) => flags.has(f));
  return { what: `x86-64 ${have.length ? have.join(' ') : 'without avx2'}`, kernel, saturatesFullRange: kernel === 'avx512bw' || kernel === 'avx2' };
}

const KERNEL_WORDS: Record<Int8Kernel, string> = {
  vnni: 'u8s8 kernels with VNNI (int32 sums, exact)',
  avx512bw: 'u8s8 kernels with AVX-512BW vpmaddubsw (int16 pair sums)',
  avx2: 'u8s8 kernels with AVX2 vpmaddubsw (int16 pair sums)',
  'x86-other': 'SSE int8 kernels (no AVX2)',
  arm: 'ARM int8 kernels (no int16 saturation)',
  unknown: 'int8 kernels of an unknown CPU',
};

/**
 * One line for `export --verify` and `serve`: the file's int8 scheme, the CPU and what
 * onnxruntime's kernels will do with it, e.g.
 * "int8 scheme reduce-range (...); cpu x86-64 avx2: onnxruntime uses u8s8 kernels with AVX2 ...: cannot saturate".
 */
export function int8Line(mode: string, scheme: Int8Scheme, cpu: CpuInt8 = cpuInt8()): string {
  const verdict = scheme === 'reduce-range' ? 'cannot saturate'
    : cpu.saturatesFullRange ? 'WILL SATURATE (large errors); re-export with this driftlab (reduce-range)'
      : cpu.kernel === 'unknown' ? 'may saturate on x86 without VNNI; re-export with this driftlab (reduce-range)' : 'exact on this CPU only';
  return `int8 ${mode}, scheme ${describeScheme(scheme)}; cpu ${cpu.what}: onnxruntime uses ${KERNEL_WORDS[cpu.kernel]}: ${verdict}`;
}
