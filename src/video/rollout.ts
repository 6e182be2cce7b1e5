/**
 * Autoregressive rollouts of any length (the heart of driftlab).
 *
 * A sliding window: the last K frames of each of N rollouts are the context; each step generates
 * the F-K targets of the model's window and keeps the first `chunk` of them; every new frame goes
 * through the corrector before it becomes context. A corrector with an in-loop hook
 * (denoiseStep) is also called at every denoising step of every window. Frames stream to disk as they are made:
 *
 *   frames.npy  uint8 [T, N, S, S]  the K context frames, then the (corrected) generated ones
 *   truth.npy   uint8 [T, N, S, S]  the simulator's continuation of the same clips
 *   run.json    what ran (checkpoint, model id, corrector, settings, seed)
 *   state.json  frames written, RNG and corrector states (atomic, after every step)
 *
 * Memory is constant in the horizon: only the last F frames are kept. Frames become context as
 * stored (8-bit), so what is on disk is the whole state: a killed rollout resumes from it (files
 * cut back to the last state.json) and continues the very same stream.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MovingMnist, MovingMnistClip } from '../../datasets/moving-mnist/index.js';
import type { DriftCorrector, FrameBatch, FrameHistory } from '../drift/corrector.js';
import type { Pipeline } from '../diffusion/pipeline.js';
import { anchorFramesOf } from '../diffusion/config.js';
import { SamplerName } from '../diffusion/samplers.js';
import { isAtomicLeftover, writeFileAtomic } from '../io/atomic.js';
import { NpyAppendWriter } from '../io/npy-append.js';
import { DriftlabError } from '../util/errors.js';
import { Progress } from '../util/progress.js';
import { Rng } from '../util/rng.js';
import { poolFrame } from './clips.js';
import { fromU8, toU8 } from './frames8.js';
import { WindowStep, checkEta, continueClips } from './sample-clip.js';

export interface RolloutSettings {
  rollouts: number;
  horizon: number;
  context: number;
  chunk: number;
  sampler: SamplerName;
  steps: number;
  eta: number;
  seed: number;
}

export interface RolloutOptions extends RolloutSettings {
  pipeline: Pipeline;
  corrector: DriftCorrector;
  out: string;
  resume?: boolean;
  checkpoint: string;
  quiet?: boolean;
  /** the stream the corrector draws from (its state is saved with the rollout's) */
  correctorRng: Rng;
}

/** A short id of a model's weights and config: correctors fitted for one model refuse another. */
export function modelId(p: Pipeline): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(p.config.model));
  const flat = p.model.getFlat();
  h.update(new Uint8Array(flat.buffer, flat.byteOffset, flat.byteLength));
  return h.digest('hex').slice(0, 16);
}


class History implements FrameHistory {
  private frames: FrameBatch[] = [];
  generated = 0;
  constructor(private readonly keep: number) {}
  push(f: FrameBatch) { this.frames.push(f); if (this.frames.length > this.keep) this.frames.shift(); }
  recent(k: number) { return this.frames.slice(Math.max(0, this.frames.length - k)); }
}

export async function rollout(o: RolloutOptions): Promise<{ frames: number; seconds: number }> {
  const c = o.pipeline.config.model;
  const v = c.video;
  if (!v) throw new DriftlabError(`${o.checkpoint} is an image checkpoint; rollouts need a video checkpoint from 'driftlab train-video'`);
  const F = v.frames, S = c.sampleSize, N = o.rollouts, K = o.context;
  // identity conditioning: the model's first A context slots hold the given context's first A frames for the whole rollout
  const A = anchorFramesOf(v), Km = K + A;
  if (!Number.isInteger(K) || K < 1 || Km >= F) throw new DriftlabError(`--context must be an integer in 1..${F - 1 - A} for this ${F}-frame model${A ? ` (${A} of its context slots are anchors)` : ''}, got ${o.context}`);
  if (A > K) throw new DriftlabError(`--context ${K} is shorter than the model's ${A} anchor frames (they are the context's first frames)`);
  if (!Number.isInteger(o.horizon) || o.horizon < 1 || o.horizon > 10_000_000) throw new DriftlabError(`--horizon must be an integer in 1..10000000, got ${o.horizon}`);
  if (!Number.isInteger(N) || N < 1 || N > 1024) throw new DriftlabError(`--rollouts must be an integer in 1..1024, got ${o.rollouts}`);
  if (!Number.isInteger(o.chunk) || o.chunk < 1 || o.chunk > F - Km) throw new DriftlabError(`--chunk must be an integer in 1..${F - Km} (the model's target frames with ${K} context${A ? ` and ${A} anchor${A > 1 ? 's' : ''}` : ''}), got ${o.chunk}`);
  checkEta(o.eta);
  const data = (o.pipeline.config.training as any)?.data;
  if (!data) throw new DriftlabError(`${o.checkpoint} does not record its Moving-MNIST settings; it cannot be rolled out against ground truth`);
  const run = {
    format: 'driftlab-rollout-1', checkpoint: path.resolve(o.checkpoint), modelId: modelId(o.pipeline),
    corrector: { name: o.corrector.name, ...o.corrector.describe() }, engine: o.pipeline.engine.name,
    rollouts: N, horizon: o.horizon, context: K, chunk: o.chunk, sampler: o.sampler, steps: o.steps, eta: o.eta, seed: o.seed,
    frames: F, size: S, ...(A ? { anchors: A } : {}), data: { ...data, split: 'test' }, layout: 'frames.npy and truth.npy: uint8 [T, N, S, S]; frames 0..K-1 are the given context',
  };
  const runPath = path.join(o.out, 'run.json'), statePath = path.join(o.out, 'state.json');
  const framesPath = path.join(o.out, 'frames.npy'), truthPath = path.join(o.out, 'truth.npy');
  let state: any = null;
  if (fs.existsSync(runPath)) {
    const prev = JSON.parse(fs.readFileSync(runPath, 'utf8'));
    const { horizon: _h1, ...a } = prev, { horizon: _h2, ...b } = run;
    if (!o.resume) throw new DriftlabError(`${o.out} already holds a rollout; pass --resume to continue it, or choose a new --out`);
    if (JSON.stringify(a) !== JSON.stringify(b)) throw new DriftlabError(`${o.out} holds another run (different checkpoint, corrector or settings); choose a new --out`);
    state = fs.existsSync(statePath) ? JSON.parse(fs.readFileSync(statePath, 'utf8')) : null;
  } else if (fs.existsSync(o.out)) {
    // a run killed while writing run.json leaves only its temp file: start afresh, without it
    const entries = fs.readdirSync(o.out);
    if (entries.some((f) => !isAtomicLeftover(f))) throw new DriftlabError(`${o.out} is not empty and holds no rollout; choose a new --out`);
    for (const f of entries) fs.rmSync(path.join(o.out, f), { force: true });
  }

  const sampleRng = new Rng(o.seed).fork('rollout-sampler');
  const fr = S * S, S0 = data.size, pool = data.pool;
  const mm = new MovingMnist({ ...data, split: 'test' }, o.seed);
  const clips: MovingMnistClip[] = Array.from({ length: N }, (_, n) => mm.clip(n, false));
  const raw = new Uint8Array(S0 * S0);
  const truthFrame = () => { // the next ground-truth frame of every rollout, [N,S,S] in [-1,1]
    const out = new Float32Array(N * fr);
    clips.forEach((clip, n) => { clip.next(raw); poolFrame(raw, S0, pool, out, n * fr); });
    return out;
  };
  const history = new History(Math.max(F, K));
  const anchors = new Float32Array(N * A * fr); // [N, A, S, S]: the given context's first A frames
  const setAnchor = (a: number, u: Uint8Array) => { const f = fromU8(u); for (let n = 0; n < N; n++) anchors.set(f.subarray(n * fr, (n + 1) * fr), (n * A + a) * fr); };
  const modelContext = () => (A ? withAnchors(anchors, contextOf(history, N, K, fr), N, A, K, fr) : contextOf(history, N, K, fr));
  let framesW: NpyAppendWriter, truthW: NpyAppendWriter;
  let written: number;
  if (state) {
    await writeFileAtomic(runPath, JSON.stringify(run, null, 2) + '\n');
    written = state.written;
    framesW = await NpyAppendWriter.reopen(framesPath, 'uint8', [N, S, S], written);
    truthW = await NpyAppendWriter.reopen(truthPath, 'uint8', [N, S, S], written);
    for (let t = 0; t < written; t++) truthFrame(); // fast-forward the simulator
    // the last frames on disk are the context to continue from
    const fd = fs.openSync(framesPath, 'r');
    try {
      const headerSize = fs.statSync(framesPath).size - written * N * fr;
      const keep = Math.min(written, Math.max(F, K));
      const buf = new Uint8Array(keep * N * fr);
      fs.readSync(fd, buf, 0, buf.length, headerSize + (written - keep) * N * fr);
      for (let j = 0; j < keep; j++) history.push({ data: fromU8(buf.subarray(j * N * fr, (j + 1) * N * fr)), n: N, s: S });
      if (A) {
        const first = new Uint8Array(A * N * fr);
        fs.readSync(fd, first, 0, first.length, headerSize);
        for (let a = 0; a < A; a++) setAnchor(a, first.subarray(a * N * fr, (a + 1) * N * fr));
      }
    } finally { fs.closeSync(fd); }
    history.generated = written - K;
    sampleRng.setState(state.rng);
    o.correctorRng.setState(state.correctorRng);
    o.corrector.reset(contextOf(history, N, K, fr), N, K);
    if (state.corrector !== undefined) o.corrector.setState?.(state.corrector);
  } else {
    const ctxFrames: Uint8Array[] = [];
    for (let k = 0; k < K; k++) {
      const u = toU8(truthFrame());
      history.push({ data: fromU8(u), n: N, s: S });
      ctxFrames.push(u);
      if (k < A) setAnchor(k, u);
    }
    // the corrector must be ready (fitted, loaded) before anything is written
    o.corrector.reset(contextOf(history, N, K, fr), N, K);
    fs.mkdirSync(o.out, { recursive: true });
    await writeFileAtomic(runPath, JSON.stringify(run, null, 2) + '\n');
    framesW = await NpyAppendWriter.create(framesPath, 'uint8', [N, S, S], { overwrite: true });
    truthW = await NpyAppendWriter.create(truthPath, 'uint8', [N, S, S], { overwrite: true });
    for (const u of ctxFrames) {
      await framesW.append(u);
      await truthW.append(u);
    }
    written = K;
  }
  const total = K + o.horizon;
  const progress = o.quiet ? null : new Progress({ total: o.horizon, label: `rollout ${o.corrector.name}`, unit: 'frame' });
  if (progress && written > K) progress.tick(written - K);
  const hook = o.corrector.denoiseStep?.bind(o.corrector);
  const stepHook = hook ? (step: WindowStep) => hook(step, history) : undefined; // in-loop correction
  const t0 = performance.now();
  try {
    while (written < total) {
      const gen = await continueClips(o.pipeline.net, o.pipeline.schedule, o.pipeline.config.objective.prediction, modelContext(), N, Km, F, S, {
        sampler: o.sampler, steps: o.steps, eta: o.eta, clipX0: true, rng: sampleRng, contextT: o.corrector.contextT?.() ?? 0, anchors: A,
        onStep: stepHook,
      });
      const take = Math.min(o.chunk, total - written);
      for (let j = 0; j < take; j++) {
        const frame = new Float32Array(N * fr);
        for (let n = 0; n < N; n++) frame.set(gen.subarray((n * (F - Km) + j) * fr, (n * (F - Km) + j + 1) * fr), n * fr);
        const corrected = await o.corrector.correct({ data: frame, n: N, s: S }, history, history.generated);
        const u = toU8(corrected.data);
        history.push({ data: fromU8(u), n: N, s: S }); // context as stored: 8-bit
        history.generated += 1;
        await framesW.append(u);
        await truthW.append(toU8(truthFrame()));
        written += 1;
      }
      await writeFileAtomic(statePath, JSON.stringify({ written, rng: sampleRng.getState(), correctorRng: o.correctorRng.getState(), corrector: o.corrector.getState?.() }) + '\n');
      progress?.tick(take);
    }
  } finally {
    await framesW.close();
    await truthW.close();
    progress?.done();
  }
  return { frames: written, seconds: (performance.now() - t0) / 1000 };
}

/** [N, A, S, S] anchors and [N, K, S, S] newest frames as the model's [N, A+K, S, S] context. */
export function withAnchors(anchors: Float32Array, recent: Float32Array, N: number, A: number, K: number, fr: number): Float32Array {
  const out = new Float32Array(N * (A + K) * fr);
  for (let n = 0; n < N; n++) {
    out.set(anchors.subarray(n * A * fr, (n + 1) * A * fr), n * (A + K) * fr);
    out.set(recent.subarray(n * K * fr, (n + 1) * K * fr), (n * (A + K) + A) * fr);
  }
  return out;
}

/** The last K frames of every rollout as [N, K, S, S]. */
function contextOf(h: History, N: number, K: number, fr: number): Float32Array {
  const last = h.recent(K);
  const out = new Float32Array(N * K * fr);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) out.set(last[k].data.subarray(n * fr, (n + 1) * fr), (n * K + k) * fr);
  return out;
}
