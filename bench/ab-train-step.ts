/**
 * A/B of whole onnxruntime training steps (reference network, batch 64): the graph built by
 * another build of driftlab (--base: the root of a built copy of an older commit, e.g.
 * `git archive COMMIT | tar -x -C DIR`, node_modules linked, `npx tsc -p .`) against this one, and/or
 * two sets of session options (--opts-a / --opts-b: JSON merged over the training sessions' extra,
 * TRAIN_SESSION_EXTRA, in cpuSessionOptions; '{"enableMemPattern":true}' is the setting before session 13).
 *
 *   node dist/bench/ab-train-step.js [--base DIR] [--opts-a JSON] [--opts-b JSON] [--graph-a JSON] [--graph-b JSON]
 *                                    [--threads 1] [--rounds 7] [--reps 1]
 *
 * --graph-a / --graph-b: JSON merged into that arm's buildTrainGraph options, e.g.
 * '{"nchwcBlock":"auto"}' (auto: this CPU's block, onnx-engine.ts nchwcBlockSize; 0: plain Convs).
 *
 * Both sessions run on the same feeds, interleaved A, B, A, B, ... (--rounds rounds of --reps runs
 * each, after one warm-up run each); medians of wall and process CPU time (user + system), and the
 * ratio B / A. The losses and the new parameters of both are compared (same function: same
 * loss; parameters to float rounding), and B's second run on the same feeds must repeat its
 * first bit for bit.
 */
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { SPEC_UNET } from '../src/diffusion/config.js';
import { modelParamSpecs } from '../src/diffusion/arch.js';
import { DEFAULT_ADAMW } from '../src/diffusion/optim.js';
import { TRAIN_SESSION_EXTRA, cpuSessionOptions, loadOrt, nchwcBlockSize } from '../src/engine/onnx-engine.js';
import * as local from '../src/engine/train-graph.js';
import { referenceStepFeeds } from './train-step-feeds.js';

const argv = process.argv;
const opt = (n: string, d: string) => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1] : d);
const B = 64;
const threads = Number(opt('threads', '1'));
const rounds = Number(opt('rounds', '7'));
const reps = Number(opt('reps', '1'));
const base = opt('base', '');
const optsA = JSON.parse(opt('opts-a', '{}')), optsB = JSON.parse(opt('opts-b', '{}'));
const graphA = JSON.parse(opt('graph-a', '{}')), graphB = JSON.parse(opt('graph-b', '{}'));
const status = await loadOrt();
if (!status.ort) throw new Error(status.error);
const ort = status.ort;
const median = (v: number[]) => { const s = [...v].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

const baseGraph: typeof local = base ? await import(pathToFileURL(path.resolve(base, 'dist', 'src', 'engine', 'train-graph.js')).href) : local;
const specs = modelParamSpecs(SPEC_UNET);
const scalars: Record<string, number> = { max_norm: 1, decay: 1 - 1e-4 * DEFAULT_ADAMW.weightDecay, step_size: 1e-4 / (1 - DEFAULT_ADAMW.beta1), sqrt_bc2: Math.sqrt(1 - DEFAULT_ADAMW.beta2), ema_d: 0.999, ema_c: 0.001 };
const feeds = referenceStepFeeds(ort, B, (k) => scalars[k]);
const block = await nchwcBlockSize(ort);
for (const g of [graphA, graphB]) if (g.nchwcBlock === 'auto') g.nchwcBlock = block;
const arms = [
  { name: base ? `A: ${path.basename(path.resolve(base))}` : 'A: this build', graph: baseGraph.buildTrainGraph(SPEC_UNET, { rows: B, adam: DEFAULT_ADAMW, ...graphA }), opts: optsA, g: graphA },
  { name: 'B: this build', graph: local.buildTrainGraph(SPEC_UNET, { rows: B, adam: DEFAULT_ADAMW, ...graphB }), opts: optsB, g: graphB },
];
const sessions = await Promise.all(arms.map((a) => ort.InferenceSession.create(a.graph.bytes, cpuSessionOptions(threads, { ...TRAIN_SESSION_EXTRA, ...a.opts }).options as any)));
const first = await Promise.all(sessions.map((s) => s.run(feeds)));
let worst = 0;
for (const s of specs) {
  const [a, b] = first.map((r) => r[`new_p:${s.name}`].data as Float32Array);
  const [pa] = [feeds[`p:${s.name}`].data as Float32Array];
  let d = 0, n = 0;
  for (let i = 0; i < a.length; i++) { d += (a[i] - b[i]) ** 2; n += (a[i] - pa[i]) ** 2; }
  worst = Math.max(worst, n > 0 ? Math.sqrt(d / n) : 0);
}
// determinism: B again on the same feeds must give the same bytes
const again = await sessions[1].run(feeds);
const sameBytes = specs.every((s) => { const [x, y] = [first[1][`new_p:${s.name}`].data as Float32Array, again[`new_p:${s.name}`].data as Float32Array]; return x.every((v, i) => Object.is(v, y[i])); })
  && Object.is(first[1].loss.data[0], again.loss.data[0]);
const wall = arms.map(() => [] as number[]), cpu = arms.map(() => [] as number[]);
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < arms.length; i++) {
    const c0 = process.cpuUsage(), t0 = performance.now();
    for (let k = 0; k < reps; k++) await sessions[i].run(feeds);
    const dt = performance.now() - t0, dc = process.cpuUsage(c0);
    wall[i].push(dt / reps); cpu[i].push((dc.user + dc.system) / 1000 / reps);
  }
}
console.log(`whole onnx training step, reference network, batch ${B}, ${threads} intra-op thread(s), onnxruntime-node ${status.version}; ${rounds} rounds x ${reps} runs interleaved, medians`);
console.log('| arm | graph nodes | graph options | session options | wall ms | cpu ms | cpu ratio | wall ratio | loss |\n|---|---|---|---|---|---|---|---|---|');
arms.forEach((a, i) => console.log(`| ${a.name} | ${a.graph.nodes} | ${JSON.stringify(a.g)} | ${JSON.stringify(a.opts)} | ${median(wall[i]).toFixed(0)} | ${median(cpu[i]).toFixed(0)} | ${(median(cpu[i]) / median(cpu[0])).toFixed(2)} | ${(median(wall[i]) / median(wall[0])).toFixed(2)} | ${first[i].loss.data[0]} |`));
console.log(`parameter update of B against A: worst relative difference (per tensor, L2, relative to the update) ${worst.toExponential(2)}`);
console.log(`B run twice on the same feeds: ${sameBytes ? 'the same bytes (loss and every new parameter)' : 'DIFFERENT bytes'}`);
for (const s of sessions) await s.release();
