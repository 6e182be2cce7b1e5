/**
 * What the int8 scheme of issue #14 costs in speed: the reference network (shared/bench/UNET_SPEC.md)
 * at batch 64 on onnxruntime-node, float32 against int8 dynamic and static, each int8 file written
 * twice: 'reduce-range' (the default: 7-bit weights wherever an integer kernel reads them) and
 * 'full-range' (8-bit, the files before the fix). 1 and 2 intra-op threads, one session at a time
 * (onnxruntime's idle intra-op threads spin and would steal cores from a session timed beside
 * them), median of --iters after --warmup.
 *
 * Beside each speed: the rms difference from the float32 output on the timed batch (noisy MNIST
 * digits x_t, t uniform), in % of the output's rms, so a full-range file that saturates on this CPU
 * shows as a large error next to its time. The int8 line printed first says which kernels
 * onnxruntime uses here; `bash scripts/cpu-mask/run.sh avx2 node dist/bench/bench-int8-scheme.js`
 * times the AVX2 (no VNNI) kernels on a VNNI machine.
 *
 *   node dist/bench/bench-int8-scheme.js [--iters 10] [--warmup 3] [--threads 1,2] [--ckpt DIR|none] [--out FILE]
 *
 * Then, unless --ckpt none, the accuracy of both schemes on a trained checkpoint (default the
 * shipped checkpoints/mnist-small; its own network, not timed): rms and max |int8 - float32| in %
 * of the float32 output on 256 noisy test digits (4 batches of 64, seed 7; static calibrated on
 * 512, seed 0). Under cpu-mask avx2 the full-range rows show the saturation.
 *
 * Run it on an idle machine: the load average at the start is printed and recorded.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadCheckpoint } from '../src/diffusion/checkpoint.js';
import { SPEC_UNET, UNetConfig } from '../src/diffusion/config.js';
import { UNetModel } from '../src/diffusion/model.js';
import { DEFAULT_SCHEDULE, ScheduleConfig } from '../src/diffusion/schedule.js';
import { exportOnnx } from '../src/engine/export.js';
import { INT8_SCHEMES, Int8Scheme, cpuInt8, int8Line, measuredCpuInt8 } from '../src/engine/int8-scheme.js';
import { OnnxUNet, loadOrt, probeU8S8Saturation } from '../src/engine/onnx-engine.js';
import { decodeModel } from '../src/engine/onnx-proto.js';
import { calibrate, mnistCalibration, quantizeOnnxBytes } from '../src/engine/quantize.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}

const median = (v: number[]) => { const s = [...v].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

function relRms(got: Float32Array, ref: Float32Array): number {
  let se = 0, r2 = 0;
  for (let i = 0; i < ref.length; i++) { const d = got[i] - ref[i]; se += d * d; r2 += ref[i] * ref[i]; }
  return Math.sqrt(se / r2);
}

interface Row { precision: string; scheme: Int8Scheme | null; threads: number; imgPerSec: number; msMedian: number; rmsVsFloat32: number | null; fileMB: number }

interface Accuracy { precision: string; scheme: Int8Scheme; rmsPct: number; maxPct: number }

/** both schemes against float32 on a checkpoint's own network (1 thread, untimed) */
async function accuracy(ckptDir: string): Promise<{ ckpt: string; rows: Accuracy[] }> {
  const ck = await loadCheckpoint(ckptDir, { ema: true });
  const c: UNetConfig = ck.config.model, schedule: ScheduleConfig = ck.config.schedule;
  const floatBytes = exportOnnx(c, ck.ema ?? ck.params).bytes;
  const ranges = await calibrate(decodeModel(floatBytes), mnistCalibration(c, schedule, 512, 64, 0), c);
  const batches = mnistCalibration(c, schedule, 256, 64, 7);
  const outputs = async (bytes: Uint8Array) => {
    const u = await OnnxUNet.create(bytes, c, { threads: 1 });
    try {
      const r: Float32Array[] = [];
      for (const b of batches) r.push(Float32Array.from(await u.run(b.x, b.t.length, b.t, b.labels)));
      return r;
    } finally {
      await u.release();
    }
  };
  const ref = await outputs(floatBytes);
  const rows: Accuracy[] = [];
  for (const mode of ['dynamic', 'static'] as const) {
    for (const scheme of INT8_SCHEMES) {
      const got = await outputs(quantizeOnnxBytes(floatBytes, mode, { scheme, ranges: mode === 'static' ? ranges : undefined }).bytes);
      let se = 0, r2 = 0, max = 0, refMax = 0;
      got.forEach((g, k) => {
        for (let i = 0; i < g.length; i++) {
          const d = g[i] - ref[k][i];
          se += d * d; r2 += ref[k][i] * ref[k][i]; max = Math.max(max, Math.abs(d)); refMax = Math.max(refMax, Math.abs(ref[k][i]));
        }
      });
      rows.push({ precision: `int8 ${mode}`, scheme, rmsPct: 100 * Math.sqrt(se / r2), maxPct: (100 * max) / refMax });
    }
  }
  return { ckpt: ckptDir, rows };
}

async function main() {
  const iters = Number(arg('iters', '10'));
  const warmup = Number(arg('warmup', '3'));
  const threadList = arg('threads', '1,2').split(',').map(Number);
  if (!(iters >= 1) || !(warmup >= 0) || threadList.some((t) => !Number.isInteger(t) || t < 1)) throw new Error('--iters >= 1, --warmup >= 0, --threads a list of positive integers');
  const B = 64;
  const load = os.loadavg();
  process.stderr.write(`load average at start: ${load.map((l) => l.toFixed(2)).join(' ')} on ${os.availableParallelism()} cores${load[0] > 0.5 * os.availableParallelism() ? ' (busy: these timings will not mean much)' : ''}\n`);

  const status = await loadOrt();
  if (!status.ort) throw new Error(status.error);
  const cpu = measuredCpuInt8(cpuInt8(), await probeU8S8Saturation(status.ort));
  for (const s of INT8_SCHEMES) process.stderr.write(`${int8Line('files', s, cpu)}\n`);

  const model = new UNetModel(SPEC_UNET, 0); // the reference network, seed-0 init (as bench.ts)
  const floatBytes = exportOnnx(SPEC_UNET, model.getFlat()).bytes;
  const numParams = model.numParams;
  model.dispose();
  const ranges = await calibrate(decodeModel(floatBytes), mnistCalibration(SPEC_UNET, DEFAULT_SCHEDULE, 512, B, 0), SPEC_UNET);
  const files: { precision: string; scheme: Int8Scheme | null; bytes: Uint8Array }[] = [{ precision: 'float32', scheme: null, bytes: floatBytes }];
  for (const mode of ['dynamic', 'static'] as const) {
    for (const scheme of INT8_SCHEMES) {
      files.push({ precision: `int8 ${mode}`, scheme, bytes: quantizeOnnxBytes(floatBytes, mode, { scheme, ranges: mode === 'static' ? ranges : undefined }).bytes });
    }
  }
  // the timed batch: noisy MNIST digits x_t, t uniform (what sampling feeds the network)
  const batch = mnistCalibration(SPEC_UNET, DEFAULT_SCHEDULE, B, B, 1)[0];

  const rows: Row[] = [];
  for (const threads of threadList) {
    let ref: Float32Array | null = null;
    for (const f of files) {
      const u = await OnnxUNet.create(f.bytes, SPEC_UNET, { threads });
      try {
        const out = Float32Array.from(await u.run(batch.x, B, batch.t, batch.labels));
        if (!f.scheme) ref = out;
        for (let i = 0; i < warmup; i++) await u.run(batch.x, B, batch.t, batch.labels);
        const ms: number[] = [];
        for (let i = 0; i < iters; i++) {
          const t0 = performance.now();
          await u.run(batch.x, B, batch.t, batch.labels);
          ms.push(performance.now() - t0);
        }
        const label = f.scheme ? `${f.precision} ${f.scheme}` : f.precision;
        const row: Row = { precision: f.precision, scheme: f.scheme, threads, imgPerSec: (B * 1000) / median(ms), msMedian: median(ms), rmsVsFloat32: ref && f.scheme ? relRms(out, ref) : null, fileMB: f.bytes.length / 1e6 };
        rows.push(row);
        process.stderr.write(`  ${label}, ${threads} thread(s): median ${row.msMedian.toFixed(0)} ms over ${iters}\n`);
      } finally {
        await u.release();
      }
    }
  }

  process.stdout.write(`\nreference U-Net (${numParams.toLocaleString('en-US')} params), batch ${B}, onnxruntime-node ${status.version}; cpu ${cpu.what}\n`);
  for (const r of rows) {
    const base = rows.find((x) => x.threads === r.threads && !x.scheme)!;
    const label = r.scheme ? `${r.precision} ${r.scheme}` : r.precision;
    const err = r.rmsVsFloat32 === null ? '' : `, rms ${(100 * r.rmsVsFloat32).toFixed(2)}% of float32's`;
    process.stdout.write(`  ${label.padEnd(26)} ${String(r.threads).padStart(2)} thread(s)  ${r.imgPerSec.toFixed(1).padStart(7)} img/s  (median ${r.msMedian.toFixed(0)} ms, ${(r.imgPerSec / base.imgPerSec).toFixed(2)}x float32${err})\n`);
  }
  const ckptDir = arg('ckpt', path.join('checkpoints', 'mnist-small'));
  const acc = ckptDir === 'none' ? null : await accuracy(ckptDir);
  if (acc) {
    process.stdout.write(`\naccuracy on ${acc.ckpt} (256 noisy test digits; % of the float32 output)\n`);
    for (const r of acc.rows) process.stdout.write(`  ${`${r.precision} ${r.scheme}`.padEnd(26)} rms ${r.rmsPct.toFixed(2).padStart(6)}%  max ${r.maxPct.toFixed(2).padStart(6)}% of max |out|\n`);
  }
  const result = {
    bench: 'int8 scheme (issue #14)', spec: 'shared/bench/UNET_SPEC.md', batch: B, params: numParams, onnxruntime: status.version,
    cpu: cpu.what, cpuModel: os.cpus()[0]?.model, cores: os.availableParallelism(), loadAverageAtStart: load, cpuMask: process.env.CPUMASK ?? null,
    node: process.version, date: new Date().toISOString(), command: `node dist/bench/bench-int8-scheme.js ${process.argv.slice(2).join(' ')}`.trim(), iters, warmup, rows, accuracy: acc,
  };
  const out = arg('out', path.join('bench', 'results', 'int8-scheme-latest.json'));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(`written ${out}\n`);
}

main().catch((e) => { process.stderr.write(`bench-int8-scheme: ${e instanceof Error ? e.message : String(e)}\n`); process.exit(1); });
