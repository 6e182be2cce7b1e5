/**
 * Peak memory of a training process: the reference network (shared/bench/UNET_SPEC.md) at batch
 * 64, --steps whole training steps on one engine, then the process's peak RSS
 * (process.resourceUsage().maxRSS; worker threads are in the same process) and the median step.
 * One configuration per process, so each peak is its own (compare torch_peer.py's maxRssMB).
 *
 *   node dist/bench/train-rss.js [--engine onnx|tfjs] [--workers 2] [--threads 1] [--steps 6] [--backend wasm]
 */
import * as os from 'node:os';
import { initBackend, BackendName } from '../src/backend.js';
import { modelParamSpecs } from '../src/diffusion/arch.js';
import { CHECKPOINT_FORMAT } from '../src/diffusion/checkpoint.js';
import { SPEC_UNET } from '../src/diffusion/config.js';
import { TrainBatch } from '../src/diffusion/grad.js';
import { flatLayout, joinFlat } from '../src/diffusion/model.js';
import { DEFAULT_OBJECTIVE } from '../src/diffusion/objective.js';
import { DEFAULT_ADAMW } from '../src/diffusion/optim.js';
import { DEFAULT_SCHEDULE } from '../src/diffusion/schedule.js';
import { TrainEngineChoice, createTrainEngine } from '../src/diffusion/train-engine.js';
import { initParamValues } from '../src/diffusion/unet.js';
import { Rng } from '../src/util/rng.js';

const argv = process.argv;
const opt = (n: string, d: string) => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1] : d);
const engine = opt('engine', 'onnx') as TrainEngineChoice;
const workers = Number(opt('workers', String(os.availableParallelism())));
const threads = argv.includes('--threads') ? Number(opt('threads', '1')) : undefined;
const steps = Number(opt('steps', '6'));
const backend = opt('backend', 'wasm') as BackendName;
const median = (v: number[]) => { const s = [...v].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

await initBackend(backend, { quiet: true });
const B = 64, D = 28 * 28;
const layout = flatLayout(modelParamSpecs(SPEC_UNET));
const params = joinFlat(layout, initParamValues(layout.specs, 0));
const n = params.length;
let line = '';
const e = await createTrainEngine(engine, {
  config: { format: CHECKPOINT_FORMAT, model: SPEC_UNET, schedule: DEFAULT_SCHEDULE, objective: DEFAULT_OBJECTIVE }, adam: DEFAULT_ADAMW,
  state: { params, ema: params.slice(), m: new Float32Array(n), v: new Float32Array(n), adamStep: 0 },
  rows: B, workers, backend, threads, say: (l) => { line = l; },
});
const rng = new Rng(0);
const ms: number[] = [];
for (let i = 0; i < steps; i++) {
  const batch: TrainBatch = { x0: rng.normals(B * D), eps: rng.normals(B * D), t: Int32Array.from({ length: B }, () => rng.int(1000)) };
  const t0 = performance.now();
  await e.step(batch, { lr: 1e-4, gradClip: 1, emaDecay: 0.9995 });
  ms.push(performance.now() - t0);
}
e.state();
const maxRssMB = process.resourceUsage().maxRSS / 1024;
await e.close();
console.log(JSON.stringify({
  what: 'training process peak RSS', line, batch: B, steps, maxRssMB: Math.round(maxRssMB), msMedianAfterFirst: Math.round(median(ms.slice(1))),
  command: `node dist/bench/train-rss.js ${argv.slice(2).join(' ')}`.trim(),
}));
