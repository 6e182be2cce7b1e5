/**
 * Cost of measuring drift (what `driftlab drift` adds to its rollouts): per-frame metrics
 * (MSE, PSNR, SSIM and trajectory recovery) of a rollout folder, and the two Moving-MNIST
 * encoders' throughput. The folder is the simulator's own continuation stored as a rollout
 * (frames = truth), N = 4 rollouts x --frames frames of 32x32, so nothing but measuring is timed.
 *
 *   node dist/bench/bench-metrics.js [--frames 500] [--out bench/results/metrics-latest.json]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/backend.js';
import { MovingMnist, DEFAULT_MMNIST } from '../datasets/moving-mnist/index.js';
import { poolFrame } from '../src/video/clips.js';
import { toU8 } from '../src/video/frames8.js';
import { encodeNpy } from '../src/io/npy.js';
import { runFrameMetrics, frameFeatures, clipFeatures } from '../src/drift/metrics.js';
import { loadFeatureNet } from '../src/eval/features/index.js';
import { toEncoderFrames } from '../src/eval/features/video-input.js';

const argv = process.argv;
const opt = (k: string, d: string) => { const i = argv.indexOf(`--${k}`); return i >= 0 ? argv[i + 1] : d; };

async function main() {
  const info = await initBackend('auto', { quiet: true });
  const T = Number(opt('frames', '500')), N = 4, S = 32, K = 4;
  const data = { ...DEFAULT_MMNIST, pool: 2 };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'driftlab-bench-metrics-'));
  const rows: Record<string, unknown>[] = [];
  try {
    const mm = new MovingMnist({ ...data, split: 'test' }, 0);
    const clips = Array.from({ length: N }, (_, n) => mm.clip(n, false));
    const raw = new Uint8Array(64 * 64), f = new Float32Array(N * S * S);
    const u8 = new Uint8Array(T * N * S * S);
    for (let t = 0; t < T; t++) {
      clips.forEach((c, n) => { c.next(raw); poolFrame(raw, 64, 2, f, n * S * S); });
      u8.set(toU8(f), t * N * S * S);
    }
    const npy = encodeNpy({ dtype: 'uint8', shape: [T, N, S, S], data: u8, fortranOrder: false });
    fs.writeFileSync(path.join(tmp, 'frames.npy'), npy);
    fs.writeFileSync(path.join(tmp, 'truth.npy'), npy);
    fs.writeFileSync(path.join(tmp, 'run.json'), JSON.stringify({ data: { ...data, split: 'test' }, seed: 0, rollouts: N, context: K, horizon: T - K }));
    await runFrameMetrics(tmp); // warm-up
    let t0 = performance.now();
    const m = await runFrameMetrics(tmp);
    let s = (performance.now() - t0) / 1000;
    rows.push({ what: 'per-frame metrics (MSE, PSNR, SSIM, trajectory)', frames: T * N, framesPerSec: (T * N) / s });
    let maxTraj = 0;
    for (const v of m.traj) maxTraj = Math.max(maxTraj, v);
    const toInput = (a: Uint8Array, c: number, side: number) => toEncoderFrames(a, c, side, 'u8');
    const frameNet = await loadFeatureNet('mmnist-frame');
    frameFeatures(u8.subarray(0, 256 * S * S), 256, S, frameNet, toInput);
    t0 = performance.now();
    frameFeatures(u8, T * N, S, frameNet, toInput);
    s = (performance.now() - t0) / 1000;
    rows.push({ what: 'frame encoder features', frames: T * N, framesPerSec: (T * N) / s });
    frameNet.dispose();
    const clipNet = await loadFeatureNet('mmnist-clip');
    const nClips = Math.floor((T * N) / 16);
    clipFeatures(u8.subarray(0, 32 * 16 * S * S), 32, S, clipNet, toInput);
    t0 = performance.now();
    clipFeatures(u8.subarray(0, nClips * 16 * S * S), nClips, S, clipNet, toInput);
    s = (performance.now() - t0) / 1000;
    rows.push({ what: 'clip encoder features (16 frames)', clips: nClips, clipsPerSec: nClips / s });
    clipNet.dispose();
    const result = {
      backend: info.line, cores: os.availableParallelism(), cpu: os.cpus()[0]?.model, node: process.version, date: new Date().toISOString(),
      command: `node dist/bench/bench-metrics.js ${argv.slice(2).join(' ')}`.trim(), maxTrajectoryErrorOnTruth: maxTraj, rows,
    };
    process.stdout.write(`\ndrift metrics, ${N} x ${T} frames of ${S}x${S} (${info.line})\n`);
    for (const r of rows) {
      const v = r.framesPerSec !== undefined ? `${(r.framesPerSec as number).toFixed(0)} frames/s` : `${(r.clipsPerSec as number).toFixed(0)} clips/s`;
      process.stdout.write(`  ${String(r.what).padEnd(50)} ${v}\n`);
    }
    process.stdout.write(`  trajectory recovery on the simulator's frames: max error ${maxTraj.toFixed(2)} px\n`);
    const out = opt('out', path.join('bench', 'results', 'metrics-latest.json'));
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(`written ${out}\n`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => { process.stderr.write(`bench-metrics failed: ${(e as Error).message}\n`); process.exit(1); });
