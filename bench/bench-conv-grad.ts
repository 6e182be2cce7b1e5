/**
 * Conv gradient formulations (engine/onnx-conv-grad.ts) against each other in onnxruntime, on every
 * conv of the reference network's training graph (batch 64 by default), and whole training steps
 * under two policies.
 *
 *   node dist/bench/bench-conv-grad.js [--batch 64] [--threads 1] [--rounds 7] [--reps 2] [--kind dx|dw] [--nchwc]
 *   node dist/bench/bench-conv-grad.js --whole [--rounds 7]     # whole train step: today's policy vs the default
 *
 * Per case, one small graph per applicable formulation (inputs laid out as the training graph has
 * them: activations and dy NCHW, weights in the checkpoint layout; outputs left in the layout the
 * formulation produces, except that weight gradients are brought to the checkpoint layout, as the
 * optimizer needs them there). Every formulation's result is checked against the first one's.
 * Timing is interleaved (A, B, C, A, B, C, ... for --rounds rounds of --reps runs each): medians of
 * wall time and of process CPU time (user + system), which a shared machine perturbs less; ratios
 * are against the first formulation (today's). Sessions use driftlab's options (cpuSessionOptions).
 * --nchwc: the builder runs Convs on non-constant weights through onnxruntime's blocked kernels
 * (this CPU's block, onnx-engine.ts nchwcBlockSize): flipped-conv then uses them, and the
 * swapped-nchwc weight gradient is measured too.
 */
import { SPEC_UNET } from '../src/diffusion/config.js';
import { DEFAULT_ADAMW } from '../src/diffusion/optim.js';
import { ONNX_IR_VERSION, ONNX_OPSET } from '../src/engine/export.js';
import { cpuSessionOptions, loadOrt, nchwcBlockSize } from '../src/engine/onnx-engine.js';
import type { GVal } from '../src/engine/onnx-ops.js';
import { permuteData } from '../src/engine/onnx-ops.js';
import { NCHWC_DOMAIN, encodeModel } from '../src/engine/onnx-proto.js';
import {
  ConvCase, ConvGradPolicy, DW_FORMULATIONS, DX_FORMULATIONS, convGradApplies, defaultConvGrad, todaysConvGrad,
} from '../src/engine/onnx-conv-grad.js';
import { OnnxTrainBuilder } from '../src/engine/onnx-train-ops.js';
import { buildTrainGraph } from '../src/engine/train-graph.js';
import { Rng } from '../src/util/rng.js';
import { referenceStepFeeds } from './train-step-feeds.js';

const argv = process.argv;
const opt = (n: string, d: string) => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1] : d);
const B = Number(opt('batch', '64'));
const threads = Number(opt('threads', '1'));
const rounds = Number(opt('rounds', '7'));
const reps = Number(opt('reps', '2'));
const status = await loadOrt();
if (!status.ort) throw new Error(status.error);
const ort = status.ort;
const block = argv.includes('--nchwc') ? await nchwcBlockSize(ort) : 0;
if (argv.includes('--nchwc') && !block) throw new Error('--nchwc: onnxruntime has no blocked-layout kernels on this machine');
type Tensor = InstanceType<typeof ort.Tensor>;
type Session = Awaited<ReturnType<typeof ort.InferenceSession.create>>;
const median = (v: number[]) => { const s = [...v].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

/** Interleaved timing of fns: per fn, medians (ms per run) of wall and CPU time. */
async function interleaved(fns: (() => Promise<unknown>)[]): Promise<{ wall: number; cpu: number }[]> {
  for (const f of fns) await f(); // warm-up
  const wall = fns.map(() => [] as number[]), cpu = fns.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < fns.length; i++) {
      const c0 = process.cpuUsage(), t0 = performance.now();
      for (let k = 0; k < reps; k++) await fns[i]();
      const dt = performance.now() - t0, dc = process.cpuUsage(c0);
      wall[i].push(dt / reps); cpu[i].push((dc.user + dc.system) / 1000 / reps);
    }
  }
  return fns.map((_, i) => ({ wall: median(wall[i]), cpu: median(cpu[i]) }));
}

const session = (bytes: Uint8Array) => ort.InferenceSession.create(bytes, cpuSessionOptions(threads).options as any);

if (argv.includes('--whole')) await whole();
else await perCase();

async function perCase() {
  // the conv cases of the real graph (recorded while it is built), with their multiplicity
  const seen = new Map<string, { c: ConvCase; n: number }>();
  const record: ConvGradPolicy = (c) => { const k = JSON.stringify(c); const e = seen.get(k) ?? { c, n: 0 }; e.n++; seen.set(k, e); return defaultConvGrad(c); };
  buildTrainGraph(SPEC_UNET, { rows: B, adam: DEFAULT_ADAMW, convGrad: record });
  console.log(`conv gradients of the reference network's training graph, batch ${B}, ${threads} intra-op thread(s), onnxruntime-node ${status.version}, ${block ? `blocked kernels (block ${block})` : 'no blocked kernels'}; ${rounds} rounds x ${reps} runs interleaved, medians; ratio = formulation / first (lower is faster)`);
  console.log('\n| grad | x [B,H,W,Cin] | w [KH,KW,Cin,Cout] | stride | x in graph | formulation | wall ms | cpu ms | cpu ratio | wall ratio | max rel diff |\n|---|---|---|---|---|---|---|---|---|---|---|');
  const rng = new Rng(3);
  const kind = opt('kind', ''); // dx | dw: only those
  for (const { c, n } of [...seen.values()].filter((e) => !kind || e.c.kind === kind).sort((a, b) => (a.c.kind < b.c.kind ? -1 : a.c.kind > b.c.kind ? 1 : 0))) {
    const forms = (c.kind === 'dx' ? DX_FORMULATIONS : DW_FORMULATIONS).filter((f) => convGradApplies(f, c, block));
    const nchw = (s: number[]) => [s[0], s[3], s[1], s[2]];
    const data = {
      x: new ort.Tensor('float32', rng.normals(c.xShape.reduce((a, b) => a * b, 1)), nchw(c.xShape)),
      dy: new ort.Tensor('float32', rng.normals(c.dyShape.reduce((a, b) => a * b, 1)), nchw(c.dyShape)),
      w: new ort.Tensor('float32', rng.normals(c.wShape.reduce((a, b) => a * b, 1)), c.wShape),
    };
    const runs: { f: string; s: Session; feeds: Record<string, Tensor>; toLogical: (d: Float32Array) => Float32Array }[] = [];
    for (const f of forms) {
      const g = new OnnxTrainBuilder();
      g.convGrad = () => f;
      g.nchwcBlock = block;
      const NCHW = [0, 3, 1, 2];
      const act = (name: string, shape: number[]): GVal => { g.input(name, nchw(shape)); return { id: name, shape, perm: NCHW, dtype: 'float32' }; };
      let y: GVal;
      const feeds: Record<string, Tensor> = { dy: data.dy };
      if (c.kind === 'dx') {
        y = g.conv2dGradInput(act('dy', c.dyShape), g.input('w', c.wShape), c.xShape, c.stride, c.pad);
        feeds.w = data.w;
      } else {
        y = g.conv2dGradWeight(act('x', c.xShape), act('dy', c.dyShape), c.wShape, c.stride, c.pad);
        feeds.x = data.x;
      }
      // dx stays in the layout it was made in (the backward pass goes on from there); dw is
      // brought to the checkpoint layout (the optimizer reads it there)
      const perm = c.kind === 'dx' ? y.perm : [0, 1, 2, 3];
      const phys = perm.map((a) => y.shape[a]);
      g.outputPhysical(y, perm, 'y');
      const bytes = encodeModel({
        irVersion: ONNX_IR_VERSION, opsetImports: [{ domain: '', version: ONNX_OPSET }, { domain: NCHWC_DOMAIN, version: 1 }], producerName: 'bench', producerVersion: '', docString: '', graph: g.graph('conv_grad'), metadata: {},
      });
      const inv = [0, 1, 2, 3].map((j) => perm.indexOf(j));
      runs.push({ f, s: await session(bytes), feeds, toLogical: (d) => permuteData(d, phys, inv) });
    }
    const outs = await Promise.all(runs.map(async (r) => r.toLogical((await r.s.run(r.feeds)).y.data as Float32Array)));
    const rel = (a: Float32Array, b: Float32Array) => { let d = 0, n = 0; for (let i = 0; i < a.length; i++) { d += (a[i] - b[i]) ** 2; n += b[i] ** 2; } return Math.sqrt(d / n); };
    const t = await interleaved(runs.map((r) => () => r.s.run(r.feeds)));
    runs.forEach((r, i) => {
      const head = i === 0 ? `| ${c.kind} | [${c.xShape}] | [${c.wShape}] | ${c.stride} | x${n} |` : '| | | | | |';
      console.log(`${head} ${r.f} | ${t[i].wall.toFixed(1)} | ${t[i].cpu.toFixed(1)} | ${(t[i].cpu / t[0].cpu).toFixed(2)} | ${(t[i].wall / t[0].wall).toFixed(2)} | ${i === 0 ? '-' : rel(outs[i], outs[0]).toExponential(1)} |`);
    });
    for (const r of runs) await r.s.release();
  }
}

async function whole() {
  const feeds = referenceStepFeeds(ort, B, (k) => (k === 'max_norm' ? 1 : k === 'ema_d' ? 0.999 : k === 'ema_c' ? 0.001 : 1e-3));
  const policies: [string, ConvGradPolicy][] = [['today (conv-transpose, swapped-conv)', todaysConvGrad], ['default (measured choice)', defaultConvGrad]];
  const sessions = await Promise.all(policies.map(([, p]) => session(buildTrainGraph(SPEC_UNET, { rows: B, adam: DEFAULT_ADAMW, convGrad: p }).bytes)));
  const losses = await Promise.all(sessions.map(async (s) => (await s.run(feeds)).loss.data[0] as number));
  const t = await interleaved(sessions.map((s) => () => s.run(feeds)));
  console.log(`whole training step, reference network, batch ${B}, ${threads} intra-op thread(s); ${rounds} rounds x ${reps} runs interleaved, medians`);
  console.log('| policy | wall ms | cpu ms | cpu ratio | wall ratio | loss |\n|---|---|---|---|---|---|');
  policies.forEach(([name], i) => console.log(`| ${name} | ${t[i].wall.toFixed(0)} | ${t[i].cpu.toFixed(0)} | ${(t[i].cpu / t[0].cpu).toFixed(2)} | ${(t[i].wall / t[0].wall).toFixed(2)} | ${losses[i]} |`));
  for (const s of sessions) await s.release();
}
