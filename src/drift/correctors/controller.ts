/**
 * `controller`: a small learned network that maps (new frame, last K context frames) to a
 * corrected frame (src/drift/controller-net.ts), trained offline on the model's own rollouts in
 * DAgger rounds (Ross et al. 2011; BAgger, Po et al. 2025):
 *
 *   for r = 1..R:
 *     roll the video model out from K real frames for `rolloutFrames` frames, the current
 *     controller applied online (round 1: the identity), its corrected frames fed forward as
 *     context exactly as in deployment (8-bit, chunk 1);
 *     collect pairs (input = generated frame + the context it was generated from,
 *                    target = the simulator's frame at that index);
 *     aggregate them with the earlier rounds' pairs; train the controller on the one-step loss
 *     ||clip(frame + r(input)) - target||^2 for `epochs` epochs (AdamW).
 *
 * Collection happens with the tape off, on host Float32Arrays: the loss sees its inputs as
 * constants, so no gradient flows through a rollout (never backpropagation through time), and
 * later rounds still teach the controller to undo its own compounding errors because their
 * inputs come from rollouts it steered.
 *
 * Config: {"dir": fitted folder, "rounds": 3, "rolloutFrames": 6, "clips": 24, "epochs": 8,
 * "lr": 2e-3, "batch": 32, "steps": 10, "sampler": "ddim", "eta": 1, "k": model K, "hidden": 16,
 * "layers": 3, "weightDecay": 0}. Saved as controller.safetensors + controller.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSafetensors, writeSafetensors, NamedTensor } from '../../io/safetensors.js';
import { writeFileAtomic } from '../../io/atomic.js';
import type { Denoiser, SamplerName } from '../../diffusion/samplers.js';
import type { Prediction } from '../../diffusion/objective.js';
import type { Schedule } from '../../diffusion/schedule.js';
import { VIDEO_ETA, continueClips, isEta } from '../../video/sample-clip.js';
import { DriftlabError } from '../../util/errors.js';
import { Rng } from '../../util/rng.js';
import {
  ControllerNetConfig, ControllerParams, ControllerTrainer, applyController, controllerParamShapes, evalLoss,
  initControllerParams, stackInput,
} from '../controller-net.js';
import type { ClipSet, CorrectorContext, DriftCorrector, FrameBatch, FrameHistory } from '../corrector.js';
import { registerCorrector } from '../registry.js';
import { quantize8 } from '../../video/frames8.js';


export interface ControllerFitConfig {
  rounds: number;
  rolloutFrames: number;
  clips: number;
  epochs: number;
  lr: number;
  batch: number;
  weightDecay: number;
  /** denoising steps and sampler of the collection rollouts */
  steps: number;
  sampler: SamplerName;
  /**
   * DDIM eta of the collection rollouts (default VIDEO_ETA, the rollouts' default: the controller
   * learns to correct the frames it will see). Fits made before this setting existed ran at eta 0.
   */
  eta: number;
}

export const DEFAULT_FIT: ControllerFitConfig = {
  rounds: 3, rolloutFrames: 6, clips: 24, epochs: 8, lr: 2e-3, batch: 32, weightDecay: 0, steps: 10, sampler: 'ddim', eta: VIDEO_ETA,
};

const FORMAT = 'driftlab-controller-1';

/** Training pairs: inputs [P,S,S,1+k] (generated frame + context), targets [P,S,S] (simulator). */
export interface Pairs { inputs: Float32Array; targets: Float32Array; count: number }

export interface CollectOptions {
  net: Denoiser; schedule: Schedule; prediction: Prediction;
  /** model window F, context frames the model is rolled out with, frame side */
  frames: number; contextFrames: number; size: number;
  /** the controller applied online (null = identity) and its architecture */
  params: ControllerParams | null; net2: ControllerNetConfig;
  clipIndices: number[]; rolloutFrames: number; steps: number; sampler: SamplerName; rng: Rng;
  /** DDIM eta of the rollouts (default 0) */
  eta?: number;
}

/**
 * Roll the model out on the given clips with the controller applied online and collect one pair
 * per generated frame. Runs on host arrays with no tape: the model and the controller are called
 * forward only, and what comes back is plain Float32Array data.
 */
export async function collectPairs(clips: ClipSet, o: CollectOptions): Promise<Pairs> {
  const { frames: F, contextFrames: Kr, size: S, net2 } = o;
  const n = o.clipIndices.length, fr = S * S, k = net2.k, C = k + 1, R = o.rolloutFrames;
  if (clips.s !== S) throw new DriftlabError(`controller: clips are ${clips.s}x${clips.s}, the model makes ${S}x${S} frames`);
  if (clips.t < Kr + R) throw new DriftlabError(`controller: rolloutFrames ${R} with ${Kr} context frames needs clips of at least ${Kr + R} frames, got ${clips.t}; pass longer clips (--frames) or a smaller rolloutFrames`);
  const truth = (b: number, t: number) => { const c = o.clipIndices[b]; return clips.data.subarray((c * clips.t + t) * fr, (c * clips.t + t + 1) * fr); };
  const frameAt = (t: number) => { const f = new Float32Array(n * fr); for (let b = 0; b < n; b++) f.set(truth(b, t), b * fr); return f; };
  // the history as the rollout keeps it: the K real frames, then corrected frames, all 8-bit
  const hist: Float32Array[] = [];
  for (let t = 0; t < Kr; t++) hist.push(quantize8(frameAt(t)));
  const inputs = new Float32Array(n * R * fr * C), targets = new Float32Array(n * R * fr);
  for (let j = 0; j < R; j++) {
    const last = hist.slice(-Kr), ctx = new Float32Array(n * Kr * fr);
    for (let b = 0; b < n; b++) for (let t = 0; t < Kr; t++) ctx.set(last[t].subarray(b * fr, (b + 1) * fr), (b * Kr + t) * fr);
    const gen = await continueClips(o.net, o.schedule, o.prediction, ctx, n, Kr, F, S, { sampler: o.sampler, steps: o.steps, eta: o.eta ?? 0, clipX0: true, rng: o.rng });
    const frame = new Float32Array(n * fr);
    for (let b = 0; b < n; b++) frame.set(gen.subarray(b * (F - Kr) * fr, (b * (F - Kr) + 1) * fr), b * fr);
    const x = stackInput(frame, hist.slice(-k), n, S, k);
    const y = frameAt(Kr + j);
    for (let b = 0; b < n; b++) { // pair index: clip-major, step fastest
      const p = b * R + j;
      inputs.set(x.subarray(b * fr * C, (b + 1) * fr * C), p * fr * C);
      targets.set(y.subarray(b * fr, (b + 1) * fr), p * fr);
    }
    const corrected = o.params ? applyController(o.params, net2, x, n, S) : frame.slice();
    hist.push(quantize8(corrected));
    if (hist.length > Math.max(Kr, k)) hist.shift();
  }
  return { inputs, targets, count: n * R };
}

function concatPairs(a: Pairs | null, b: Pairs): Pairs {
  if (!a) return b;
  const cat = (u: Float32Array, v: Float32Array) => { const o = new Float32Array(u.length + v.length); o.set(u); o.set(v, u.length); return o; };
  return { inputs: cat(a.inputs, b.inputs), targets: cat(a.targets, b.targets), count: a.count + b.count };
}

const int = (name: string, v: unknown, min: number) => {
  const x = Number(v);
  if (!Number.isInteger(x) || x < min) throw new DriftlabError(`controller: "${name}" must be an integer >= ${min}, got ${v}`);
  return x;
};
const pos = (name: string, v: unknown) => {
  const x = Number(v);
  if (!(x > 0) || !Number.isFinite(x)) throw new DriftlabError(`controller: "${name}" must be a positive number, got ${v}`);
  return x;
};

export interface RoundStats { round: number; pairs: number; onPolicyIdentityMse: number; onPolicyControllerMse: number; trainMse: number; seconds: number }

export class ControllerCorrector implements DriftCorrector {
  readonly name = 'controller';
  net: ControllerNetConfig;
  fitCfg: ControllerFitConfig;
  params: ControllerParams;
  fitted = false;
  stats: RoundStats[] = [];
  private dir: string | undefined;

  constructor(private readonly ctx: CorrectorContext, config: Record<string, unknown> = {}) {
    const known = ['dir', 'k', 'hidden', 'layers', ...Object.keys(DEFAULT_FIT)];
    for (const key of Object.keys(config)) if (!known.includes(key)) throw new DriftlabError(`controller: unknown setting "${key}"; known: ${known.join(', ')}`);
    this.dir = config.dir === undefined ? undefined : String(config.dir);
    this.net = {
      k: int('k', config.k ?? ctx.contextFrames, 1), hidden: int('hidden', config.hidden ?? 16, 1), layers: int('layers', config.layers ?? 3, 2),
    };
    const sampler = String(config.sampler ?? DEFAULT_FIT.sampler);
    if (sampler !== 'ddim' && sampler !== 'ddpm') throw new DriftlabError(`controller: "sampler" must be ddim or ddpm, got ${config.sampler}`);
    this.fitCfg = {
      rounds: int('rounds', config.rounds ?? DEFAULT_FIT.rounds, 1), rolloutFrames: int('rolloutFrames', config.rolloutFrames ?? DEFAULT_FIT.rolloutFrames, 1),
      clips: int('clips', config.clips ?? DEFAULT_FIT.clips, 1), epochs: int('epochs', config.epochs ?? DEFAULT_FIT.epochs, 1),
      lr: pos('lr', config.lr ?? DEFAULT_FIT.lr), batch: int('batch', config.batch ?? DEFAULT_FIT.batch, 1),
      weightDecay: Number(config.weightDecay ?? DEFAULT_FIT.weightDecay), steps: int('steps', config.steps ?? DEFAULT_FIT.steps, 1), sampler,
      eta: Number(config.eta ?? DEFAULT_FIT.eta),
    };
    if (!isEta(this.fitCfg.eta)) throw new DriftlabError(`controller: "eta" must be a DDIM eta in [0, 1], got ${JSON.stringify(config.eta)}`);
    if (!(this.fitCfg.weightDecay >= 0)) throw new DriftlabError(`controller: "weightDecay" must be >= 0, got ${config.weightDecay}`);
    this.params = initControllerParams(this.net, new Rng(0).fork('controller-init'));
  }

  describe(): Record<string, unknown> {
    return { ...(this.dir ? { dir: this.dir } : {}), ...this.net, fitted: this.fitted };
  }

  reset(): void {}

  correct(frame: FrameBatch, history: FrameHistory, _step = 0): FrameBatch {
    const S = this.ctx.size;
    if (frame.s !== S) throw new DriftlabError(`controller: frames are ${frame.s}x${frame.s}, this controller works on ${S}x${S}`);
    const x = stackInput(frame.data, history.recent(this.net.k).map((f) => f.data), frame.n, S, this.net.k);
    return { n: frame.n, s: S, data: applyController(this.params, this.net, x, frame.n, S) };
  }

  /**
   * DAgger rounds on the model's own rollouts (see the top of the file). opts.seed seeds the
   * weights, the rollouts and the minibatch order; opts.pipeline is accepted but the model is
   * taken from the corrector context (the same network). One line per round goes to stderr
   * (opts.log replaces it, opts.quiet silences it).
   */
  async fit(clips: ClipSet, opts: Record<string, unknown> = {}): Promise<void> {
    const f = this.fitCfg, c = this.ctx, S = c.size;
    const seed = Number(opts.seed ?? 0);
    const log = typeof opts.log === 'function' ? (opts.log as (s: string) => void)
      : opts.quiet ? null : (s: string) => process.stderr.write(`driftlab: ${s}\n`);
    const root = new Rng(seed).fork('controller-fit');
    this.params = initControllerParams(this.net, root.fork('init'));
    const trainer = new ControllerTrainer(this.net, this.params, { lr: f.lr, weightDecay: f.weightDecay, batch: f.batch, gradClip: 1 });
    this.stats = [];
    let all: Pairs | null = null;
    try {
      for (let r = 1; r <= f.rounds; r++) {
        const t0 = performance.now();
        // fresh clips each round (wrapping around the clip set)
        const idx = Array.from({ length: Math.min(f.clips, clips.m) }, (_, i) => ((r - 1) * f.clips + i) % clips.m);
        const pairs = await collectPairs(clips, {
          net: c.net, schedule: c.schedule, prediction: c.prediction, frames: c.frames, contextFrames: c.contextFrames, size: S,
          params: r === 1 ? null : this.params, net2: this.net, clipIndices: idx, rolloutFrames: f.rolloutFrames,
          steps: f.steps, sampler: f.sampler, eta: f.eta, rng: root.fork(`rollouts-${r}`),
        });
        const identity = initControllerParams(this.net, new Rng(0));
        const onId = evalLoss(identity, this.net, pairs.inputs, pairs.targets, S);
        const onCtl = evalLoss(this.params, this.net, pairs.inputs, pairs.targets, S);
        all = concatPairs(all, pairs);
        const trainMse = trainer.train(all.inputs, all.targets, S, f.epochs, root.fork(`order-${r}`));
        this.params = trainer.params();
        const st = { round: r, pairs: all.count, onPolicyIdentityMse: onId, onPolicyControllerMse: onCtl, trainMse, seconds: (performance.now() - t0) / 1000 };
        this.stats.push(st);
        log?.(`controller round ${r}/${f.rounds}: ${all.count} pairs, on-policy mse identity ${onId.toFixed(4)} controller ${onCtl.toFixed(4)}, train ${trainMse.toFixed(4)} (${st.seconds.toFixed(1)} s)`);
      }
    } finally {
      trainer.dispose();
    }
    this.fitted = true;
  }

  async save(dir: string): Promise<void> {
    fs.mkdirSync(dir, { recursive: true });
    const tensors: Record<string, NamedTensor> = {};
    for (const { name, shape } of controllerParamShapes(this.net)) tensors[name] = { dtype: 'F32', shape, data: this.params.get(name)! };
    await writeSafetensors(path.join(dir, 'controller.safetensors'), tensors, { format: FORMAT, modelId: this.ctx.modelId });
    const meta = {
      format: FORMAT, corrector: 'controller', modelId: this.ctx.modelId, size: this.ctx.size, k: this.net.k,
      config: this.net, fit: this.fitCfg, fitted: this.fitted, rounds: this.stats,
    };
    await writeFileAtomic(path.join(dir, 'controller.json'), JSON.stringify(meta, null, 2) + '\n');
  }

  async load(dir: string): Promise<void> {
    const jp = path.join(dir, 'controller.json');
    if (!fs.existsSync(jp)) throw new DriftlabError(`${dir} holds no fitted controller (no controller.json); fit one with 'driftlab fit-corrector controller --ckpt CKPT --out ${dir}'`);
    let meta: any;
    try { meta = JSON.parse(fs.readFileSync(jp, 'utf8')); } catch { throw new DriftlabError(`${jp} is not valid JSON; fit the controller again`); }
    if (meta?.format !== FORMAT) throw new DriftlabError(`${jp} is not a ${FORMAT} file; fit the controller again`);
    if (meta.modelId !== this.ctx.modelId || meta.size !== this.ctx.size) {
      throw new DriftlabError(`${dir}: corrector folder fitted for another model (model ${meta.modelId}, ${meta.size}x${meta.size} frames; this is ${this.ctx.modelId}, ${this.ctx.size}x${this.ctx.size}); fit it again for this checkpoint`);
    }
    const net: ControllerNetConfig = { k: int('k', meta.config?.k, 1), hidden: int('hidden', meta.config?.hidden, 1), layers: int('layers', meta.config?.layers, 2) };
    const st = await readSafetensors(path.join(dir, 'controller.safetensors'));
    const params: ControllerParams = new Map();
    for (const { name, shape } of controllerParamShapes(net)) {
      const t = st.tensors[name];
      if (!t || t.dtype !== 'F32' || JSON.stringify(t.shape) !== JSON.stringify(shape)) throw new DriftlabError(`${dir}/controller.safetensors: tensor ${name} is missing or not F32 [${shape.join(',')}]; fit the controller again`);
      params.set(name, t.data as Float32Array);
    }
    this.net = net;
    this.params = params;
    // fits from before "eta" existed collected their rollouts at eta 0
    this.fitCfg = { ...this.fitCfg, eta: 0, ...(meta.fit ?? {}) };
    this.stats = Array.isArray(meta.rounds) ? meta.rounds : [];
    this.fitted = Boolean(meta.fitted);
    this.dir = dir;
  }
}

registerCorrector('controller', 'learned residual conv net (new frame + K context -> corrected frame), fitted in DAgger rounds on the model\'s own rollouts', (ctx, config) => new ControllerCorrector(ctx, config));
