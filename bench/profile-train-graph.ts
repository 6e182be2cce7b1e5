/**
 * Where one onnxruntime training step of the reference network spends its time, per op type and
 * per node, from onnxruntime's own profiler (session option enableProfiling; the JSON trace of
 * Chrome's trace-event format it writes on endProfiling()).
 *
 *   node dist/bench/profile-train-graph.js [--batch 64] [--threads 1] [--warmup 2] [--runs 3] [--top 15] [--json FILE] [--no-nchwc]
 *
 * The graph is exactly the one `--engine onnx` trains with (engine/train-graph.ts with AdamW and
 * EMA, blocked-layout Convs where onnxruntime has them unless --no-nchwc), run through a session
 * with driftlab's session options (cpuSessionOptions). Only the last
 * --runs runs are counted (the warm-up runs' events are dropped); times are per step, averaged
 * over them. Each node name carries the part of the step that emitted it (fwd/, bwd/, opt/:
 * train-graph.ts), so the per-phase totals come from the same trace.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SPEC_UNET } from '../src/diffusion/config.js';
import { modelParamSpecs } from '../src/diffusion/arch.js';
import { flatLayout, UNetModel } from '../src/diffusion/model.js';
import { DEFAULT_ADAMW } from '../src/diffusion/optim.js';
import { TRAIN_SESSION_EXTRA, cpuSessionOptions, loadOrt, nchwcBlockSize } from '../src/engine/onnx-engine.js';
import { STEP_SCALARS, buildTrainGraph } from '../src/engine/train-graph.js';
import { Rng } from '../src/util/rng.js';

const argv = process.argv;
const opt = (n: string, d: string) => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1] : d);
const B = Number(opt('batch', '64'));
const threads = Number(opt('threads', '1'));
const warmup = Number(opt('warmup', '2'));
const runs = Number(opt('runs', '3'));
const top = Number(opt('top', '15'));

const status = await loadOrt();
if (!status.ort) throw new Error(status.error);
const ort = status.ort;
const config = SPEC_UNET;
const nchwcBlock = argv.includes('--no-nchwc') ? 0 : await nchwcBlockSize(ort);
const graph = buildTrainGraph(config, { rows: B, adam: DEFAULT_ADAMW, nchwcBlock });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'driftlab-prof-'));
const { options } = cpuSessionOptions(threads, { ...TRAIN_SESSION_EXTRA, enableProfiling: true, profileFilePrefix: path.join(dir, 'train') });
const session = await ort.InferenceSession.create(graph.bytes, options as any);

// feeds: a prepared batch of the reference network and its parameters (state of a fresh model)
const rng = new Rng(0);
const S = config.sampleSize;
const layout = flatLayout(modelParamSpecs(config));
const model = new UNetModel(config, 0);
const params = model.getFlat();
model.dispose();
const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
  x: new ort.Tensor('float32', rng.normals(B * S * S * config.inChannels), [B, S, S, config.inChannels]),
  t: new ort.Tensor('float32', Float32Array.from({ length: B }, () => rng.int(1000)), [B]),
  target: new ort.Tensor('float32', rng.normals(B * S * S * config.outChannels), [B, S, S, config.outChannels]),
  w: new ort.Tensor('float32', new Float32Array(B).fill(1), [B]),
};
const scalars: Record<string, number> = { max_norm: 1, decay: 1 - 1e-4 * DEFAULT_ADAMW.weightDecay, step_size: 1e-4 / (1 - DEFAULT_ADAMW.beta1), sqrt_bc2: Math.sqrt(1 - DEFAULT_ADAMW.beta2), ema_d: 0, ema_c: 1 };
for (const k of STEP_SCALARS) feeds[k] = new ort.Tensor('float32', Float32Array.of(scalars[k]), []);
layout.specs.forEach((s, i) => {
  const n = s.shape.reduce((a, q) => a * q, 1);
  const o = layout.offsets[i];
  feeds[`p:${s.name}`] = new ort.Tensor('float32', params.slice(o, o + n), s.shape);
  for (const slot of ['m', 'v']) feeds[`${slot}:${s.name}`] = new ort.Tensor('float32', new Float32Array(n), s.shape);
  feeds[`ema:${s.name}`] = new ort.Tensor('float32', params.slice(o, o + n), s.shape);
});

const wall: number[] = [];
for (let i = 0; i < warmup + runs; i++) {
  const t0 = performance.now();
  await session.run(feeds);
  wall.push(performance.now() - t0);
}
(session as unknown as { endProfiling(): void }).endProfiling();
await session.release();
const file = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => path.join(dir, f))[0];
if (!file) throw new Error(`onnxruntime wrote no profile into ${dir}`);
interface Ev { cat: string; name: string; dur: number; ts: number; args?: { op_name?: string; input_type_shape?: Record<string, number[]>[]; output_type_shape?: Record<string, number[]>[] } }
const events = JSON.parse(fs.readFileSync(file, 'utf8')) as Ev[];
fs.rmSync(dir, { recursive: true, force: true });

// the last `runs` model_run spans; node events inside them
const spans = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts - b.ts).slice(-runs);
if (spans.length < runs) throw new Error(`profile holds ${spans.length} runs, expected ${warmup + runs}`);
const inSpan = (e: Ev) => spans.some((s) => e.ts >= s.ts && e.ts <= s.ts + s.dur);
const nodes = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && inSpan(e));
const runMs = spans.reduce((a, s) => a + s.dur, 0) / 1000 / runs;

const byType = new Map<string, { ms: number; n: number }>();
const byNode = new Map<string, { ms: number; op: string; shapes: string }>();
const byPhase = new Map<string, number>();
const shapes = (e: Ev) => (e.args?.input_type_shape ?? []).map((o) => `[${Object.values(o)[0]}]`).join(' ') + ' -> ' + (e.args?.output_type_shape ?? []).map((o) => `[${Object.values(o)[0]}]`).join(' ');
for (const e of nodes) {
  const op = e.args?.op_name ?? '?';
  const name = e.name.replace(/_kernel_time$/, '');
  const ms = e.dur / 1000 / runs;
  const t = byType.get(op) ?? { ms: 0, n: 0 };
  t.ms += ms; t.n += 1 / runs;
  byType.set(op, t);
  const nd = byNode.get(name) ?? { ms: 0, op, shapes: shapes(e) };
  nd.ms += ms;
  byNode.set(name, nd);
  // driftlab's scopes (train-graph.ts, onnx-conv-grad.ts): fwd, loss, bwd, opt, bwd/conv_dw_<formulation>, ...
  // (onnxruntime appends its fusions' names after them)
  const scopes = name.split('/').slice(0, -1);
  const k = scopes.findIndex((p) => !/^(fwd|loss|bwd|opt|conv_d[xw]_[a-z0-9-]+)$/.test(p));
  const phase = (k < 0 ? scopes : scopes.slice(0, k)).join('/') || '(unlabelled)';
  byPhase.set(phase, (byPhase.get(phase) ?? 0) + ms);
}
const total = [...byType.values()].reduce((a, t) => a + t.ms, 0);
const pct = (ms: number) => `${((100 * ms) / total).toFixed(1)}%`;
const cpu = os.cpus()[0]?.model ?? '?';
const med = (v: number[]) => { const s = [...v].sort((a, b) => a - b); return s[s.length >> 1]; };
console.log(`onnx training step (forward, backward, clip, AdamW, EMA), reference network, batch ${B}, ${threads} intra-op thread(s), onnxruntime-node ${status.version}, ${nchwcBlock ? `blocked-layout Convs (block ${nchwcBlock})` : "plain Convs"}, ${cpu}`);
console.log(`graph: ${graph.nodes} nodes; profiled runs: ${runs} after ${warmup} warm-up; model_run ${runMs.toFixed(1)} ms/step, node kernels ${total.toFixed(1)} ms/step; wall (JS, incl. profiling) median ${med(wall.slice(warmup)).toFixed(1)} ms`);
console.log('\n| op type | ms/step | share | nodes |\n|---|---|---|---|');
for (const [op, t] of [...byType.entries()].sort((a, b) => b[1].ms - a[1].ms)) console.log(`| ${op} | ${t.ms.toFixed(1)} | ${pct(t.ms)} | ${Math.round(t.n)} |`);
console.log('\n| part of the step | ms/step | share |\n|---|---|---|');
for (const [ph, ms] of [...byPhase.entries()].sort((a, b) => b[1] - a[1])) console.log(`| ${ph} | ${ms.toFixed(1)} | ${pct(ms)} |`);
console.log(`\n| top ${top} nodes | op | ms/step | share | shapes (in -> out) |\n|---|---|---|---|---|`);
for (const [name, nd] of [...byNode.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) console.log(`| ${name} | ${nd.op} | ${nd.ms.toFixed(2)} | ${pct(nd.ms)} | ${nd.shapes} |`);
const jsonOut = opt('json', '');
if (jsonOut) {
  fs.writeFileSync(jsonOut, JSON.stringify({
    batch: B, threads, cpu, ort: status.version, runs, warmup, runMs, kernelMs: total,
    byType: Object.fromEntries(byType), byPhase: Object.fromEntries(byPhase), nodes: Object.fromEntries([...byNode.entries()].sort((a, b) => b[1].ms - a[1].ms)),
  }, null, 2) + '\n');
}
