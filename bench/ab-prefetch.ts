/**
 * A/B of the training loop's prefetch (trainer.ts: the next batch is drawn while the engine runs
 * the current step) on the video preset: the same short train-video run with prefetching off (A)
 * and on (B), alternating A, B, A, B, ... in one process, on the onnx engine's default layout.
 *
 *   node dist/bench/ab-prefetch.js [--context-frames 8] [--steps 60] [--skip 10] [--rounds 3]
 *                                  [--overlap-oversample 0.4]
 *
 * Steps/s are taken from the runs' own train-log.jsonl between step --skip and the last step (the
 * start-up and the first steps left out); medians per arm and the ratio B / A. Both arms must end
 * with the same weights bit for bit (prefetching changes no byte).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadCheckpoint } from '../src/diffusion/checkpoint.js';
import { getVideoPreset } from '../src/video/presets.js';
import { trainVideo } from '../src/video/train-video.js';

const argv = process.argv;
const opt = (n: string, d: string) => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1] : d);
const K = Number(opt('context-frames', '8')), steps = Number(opt('steps', '60')), skip = Number(opt('skip', '10'));
const rounds = Number(opt('rounds', '3')), oversample = Number(opt('overlap-oversample', '0.4'));
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'driftlab-ab-prefetch-'));

function preset() {
  const p = getVideoPreset('mmnist-small');
  const v = p.model.video!, N = v.frames - v.contextFrames;
  p.model.video = { ...v, contextFrames: K, frames: K + N };
  Object.assign(p.train, { steps, checkpointEvery: steps, seed: 0, overlapOversample: oversample });
  return p;
}

function rate(dir: string): number {
  const rows = fs.readFileSync(path.join(dir, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const a = rows.find((r) => r.step === skip), z = rows.find((r) => r.step === steps);
  return (steps - skip) / ((Date.parse(z.time) - Date.parse(a.time)) / 1000);
}

const median = (v: number[]) => { const s = [...v].sort((x, y) => x - y), m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const rates: Record<'off' | 'on', number[]> = { off: [], on: [] };
let ref: Float32Array | null = null;
for (let r = 1; r <= rounds; r++) {
  for (const arm of ['off', 'on'] as const) {
    const out = path.join(root, `${arm}-${r}`);
    await trainVideo({ preset: preset(), out, engine: 'onnx', quiet: true, workers: 2, backend: 'wasm', checkEvery: 0, rolloutCheckEvery: 0, prefetch: arm === 'on' });
    const v = rate(out);
    rates[arm].push(v);
    const w = (await loadCheckpoint(out)).params;
    if (!ref) ref = w;
    else if (!w.every((x, i) => x === ref![i])) throw new Error(`${arm} run ${r} ended with other weights`);
    console.log(`round ${r} prefetch ${arm}: ${v.toFixed(3)} steps/s`);
    fs.rmSync(out, { recursive: true, force: true });
  }
}
const a = median(rates.off), b = median(rates.on);
console.log(`K = ${K}, ${steps} steps (rate over ${skip + 1}-${steps}), ${rounds} rounds, CPU ${os.cpus()[0]?.model} x ${os.cpus().length}`);
console.log(`median steps/s: prefetch off ${a.toFixed(3)}, on ${b.toFixed(3)}; on / off ${(b / a).toFixed(3)}; all ${rounds * 2} runs ended with the same weights`);
fs.rmSync(root, { recursive: true, force: true });
