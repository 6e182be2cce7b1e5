import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
/**
 * Clip training (`driftlab train-video`): the shared loop over Moving-MNIST windows, optionally
 * starting from an image checkpoint (spatial weights by name; temporal blocks start as identity).
 */
import { CHECKPOINT_FORMAT, CheckpointConfig, loadCheckpoint } from '../diffusion/checkpoint.js';
import { splitFlat, flatLayout } from '../diffusion/model.js';
import { modelParamSpecs } from '../diffusion/arch.js';
import { UNetConfig, anchorFramesOf } from '../diffusion/config.js';
import { RunCommon, TrainCheck, TrainResult, runTraining } from '../diffusion/trainer.js';
import { UNetModel } from '../diffusion/model.js';
import { denoiserOf } from '../diffusion/pipeline.js';
import { makeSchedule } from '../diffusion/schedule.js';
import { contextUse } from '../eval/context-use.js';
import { DriftlabError } from '../util/errors.js';
import { ClipStream, modelFrameSize } from './clips.js';
import { ANCHOR_GAP, VideoPreset } from './presets.js';
import { ROLLOUT_CHECK, SelfContextPool, rolloutCheck, validateSelfContext } from './self-context.js';
import { widenParams, widthFactor } from './widen.js';

export interface TrainVideoOptions extends RunCommon {
  preset: VideoPreset;
  /** image checkpoint whose (EMA) weights initialise the spatial layers */
  initImage?: string;
  /**
   * video checkpoint whose (EMA) weights initialise this model (warm start): same U-Net trunk and
   * conditioning; with concat conditioning it may have fewer context frames, whose weights then
   * feed the newest frames of this model's context (the older ones start at zero); it may have
   * 1/f of the channels at every level, and is then widened to compute the same function (widen.ts)
   */
  initVideo?: string;
  /** log the context-use check (eval/context-use.ts) every N steps (0 = never; default: every checkpoint) */
  checkEvery?: number;
  /** log the rollout check (self-context.ts rolloutCheck) every N steps (0 = never; default ROLLOUT_CHECK_EVERY) */
  rolloutCheckEvery?: number;
}

/** The in-training check: 8 held-out windows at t = 300 and 700, EMA weights (a few seconds). */
export const TRAIN_CHECK = { windows: 8, ts: [300, 700] };

/** The initialising checkpoint by folder name and content hash: no path of this machine goes into config.json. */
function checkpointRef(dir: string): { name: string; emaSha256: string | null } {
  const ema = path.join(dir, 'ema.safetensors');
  return { name: path.basename(path.resolve(dir)), emaSha256: fs.existsSync(ema) ? createHash('sha256').update(fs.readFileSync(ema)).digest('hex') : null };
}

export async function trainVideo(o: TrainVideoOptions): Promise<TrainResult> {
  const p = o.preset, tc = p.train, v = p.model.video!;
  if (!(tc.steps >= 1 && Number.isInteger(tc.steps))) throw new DriftlabError(`--steps must be a positive integer, got ${tc.steps}`);
  if (!(tc.batchSize >= 1 && Number.isInteger(tc.batchSize))) throw new DriftlabError(`--batch-size must be a positive integer, got ${tc.batchSize}`);
  if (!(tc.maxContextT >= 0 && tc.maxContextT < p.schedule.timesteps)) throw new DriftlabError(`--context-noise must be in 0..${p.schedule.timesteps - 1}, got ${tc.maxContextT}`);
  if (tc.contextDropout !== undefined && !(tc.contextDropout >= 0 && tc.contextDropout < 1)) throw new DriftlabError(`--context-dropout must be in [0, 1), got ${tc.contextDropout}`);
  if (tc.contextJitter !== undefined && !(tc.contextJitter >= 0 && tc.contextJitter <= p.data.size)) throw new DriftlabError(`--context-jitter must be in [0, ${p.data.size}] canvas px, got ${tc.contextJitter}`);
  if (tc.joint !== undefined && !(tc.joint >= 0 && tc.joint <= 1)) throw new DriftlabError(`--joint must be in [0, 1], got ${tc.joint}`);
  if (tc.overlapOversample !== undefined && !(tc.overlapOversample >= 0 && tc.overlapOversample <= 1)) throw new DriftlabError(`--overlap-oversample must be in [0, 1], got ${tc.overlapOversample}`);
  if (tc.overlapNear !== undefined && !(tc.overlapNear > 0)) throw new DriftlabError(`--overlap-near must be > 0 canvas px, got ${tc.overlapNear}`);
  if (tc.overlapFrames !== undefined && !(Number.isInteger(tc.overlapFrames) && tc.overlapFrames >= 1 && tc.overlapFrames <= v.contextFrames)) throw new DriftlabError(`--overlap-frames must be an integer in 1..${v.contextFrames} (the context frames), got ${tc.overlapFrames}`);
  if (tc.overlapOversample && p.data.digits < 2) throw new DriftlabError(`--overlap-oversample needs clips with at least 2 digits; the data has ${p.data.digits}`);
  if (tc.joint && v.conditioning === 'concat') throw new DriftlabError('--joint needs an attention-conditioned preset (a concat model takes its context as input channels and never outputs it), for example mmnist-small-attn');
  if (v.contextLevel && v.conditioning !== 'concat') throw new DriftlabError('--context-level needs a concat-conditioned preset (attention models take one timestep per frame already)');
  if (v.contextLevel && !(tc.maxContextT > 0)) throw new DriftlabError('--context-level needs --context-noise N > 0: the level it tells the network is the context noise');
  if (tc.selfContext) validateSelfContext(tc.selfContext, tc.checkpointEvery);
  const A = anchorFramesOf(v);
  if (A > 0) {
    if (tc.anchorGap !== undefined && !(Number.isInteger(tc.anchorGap) && tc.anchorGap >= 0)) throw new DriftlabError(`--anchor-gap must be a non-negative integer (frames), got ${tc.anchorGap}`);
    if (tc.contextJitter) throw new DriftlabError('--context-jitter and --anchor-frames do not combine (the jitter would displace the anchors)');
    if (tc.selfContext && tc.selfContext.p > 0) throw new DriftlabError('--self-context and --anchor-frames do not combine yet (the pool holds plain windows)');
    if (tc.overlapFrames !== undefined && tc.overlapFrames > v.contextFrames - A) throw new DriftlabError(`--overlap-frames must be at most ${v.contextFrames - A} (the context slots after the ${A} anchor${A > 1 ? 's' : ''}), got ${tc.overlapFrames}`);
  } else if (tc.anchorGap !== undefined) throw new DriftlabError('--anchor-gap needs --anchor-frames A > 0');
  if (modelFrameSize(p.data) !== p.model.sampleSize) {
    throw new DriftlabError(`data frames are ${modelFrameSize(p.data)}px (canvas ${p.data.size} / pool ${p.data.pool}) but the model takes ${p.model.sampleSize}px`);
  }
  let initFrom: Map<string, Float32Array> | undefined;
  if (o.initImage && o.initVideo) throw new DriftlabError('--init-image and --init-video exclude each other');
  let widenedFrom: number[] | undefined;
  if (o.initVideo) ({ from: initFrom, widenedFrom } = await warmStartFrom(o.initVideo, p));
  if (o.initImage) {
    const ck = await loadCheckpoint(o.initImage, { ema: true });
    if (ck.config.model.video) throw new DriftlabError(`${o.initImage} is a video checkpoint; --init-image wants an image checkpoint`);
    const m = ck.config.model;
    // not sampleSize or numClasses: a class-conditional image model may start an unconditional video model
    const diff = trunkDiff(m, p.model, ['inChannels', 'outChannels', 'layersPerBlock', 'normGroups', 'timeEmbedDim', 'timeEmbedHidden', 'attentionHeads', 'midAttention']);
    if (diff.length) throw new DriftlabError(`${o.initImage} has another U-Net shape than ${p.name} (${diff.join(', ')} differ); it cannot initialise it`);
    initFrom = splitFlat(flatLayout(modelParamSpecs(m)), ck.ema ?? ck.params);
    if (v.conditioning === 'concat') initFrom.set('conv_in.weight', extendContextConvIn(initFrom.get('conv_in.weight')!, m.inChannels, 0, v.contextFrames));
  }
  const config: CheckpointConfig = {
    format: CHECKPOINT_FORMAT, model: p.model, schedule: p.schedule, objective: p.objective,
    training: { preset: p.name, data: p.data, initImage: o.initImage ? checkpointRef(o.initImage) : null, ...(o.initVideo ? { initVideo: { ...checkpointRef(o.initVideo), ...(widenedFrom ? { widenedFrom } : {}) } } : {}), ...tc },
  };
  const pool = tc.selfContext && tc.selfContext.p > 0
    ? new SelfContextPool(tc.selfContext, { model: p.model, schedule: makeSchedule(p.schedule), prediction: p.objective.prediction, data: p.data, seed: tc.seed })
    : null;
  const stream = new ClipStream({
    data: p.data, seed: tc.seed, batchSize: tc.batchSize, frames: v.frames, contextFrames: v.contextFrames,
    maxContextT: tc.maxContextT, T: p.schedule.timesteps, contextDropout: tc.contextDropout, independentT: tc.independentT, contextJitter: tc.contextJitter,
    joint: tc.joint, overlapOversample: tc.overlapOversample, overlapNear: tc.overlapNear, overlapFrames: tc.overlapFrames,
    ...(A > 0 ? { anchorFrames: A, anchorGap: tc.anchorGap ?? ANCHOR_GAP } : {}),
    ...(pool ? { selfContext: { p: tc.selfContext!.p, pool } } : {}),
  });
  return runTraining({
    label: `train-video ${p.name}`, config, hyper: tc, stream, itemsPerStep: tc.batchSize * v.frames, total: tc.steps,
    out: o.out, resume: o.resume, overwrite: o.overwrite, workers: o.workers, backend: o.backend, minutes: o.minutes,
    engine: o.engine, threads: o.threads, device: o.device,
    quiet: o.quiet, onStep: o.onStep, prefetch: o.prefetch, initFrom, checks: [contextCheck(p, o.checkEvery ?? tc.checkpointEvery), trackingCheck(p, o.rolloutCheckEvery ?? ROLLOUT_CHECK_EVERY)].filter((c): c is TrainCheck => !!c),
    ...(pool ? { refresh: { every: tc.selfContext!.every, run: (ema: Float32Array, step: number) => pool.ensure(ema, step, o.out) } } : {}),
  });
}

type ScalarKey = 'sampleSize' | 'inChannels' | 'outChannels' | 'layersPerBlock' | 'normGroups' | 'timeEmbedDim' | 'timeEmbedHidden' | 'attentionHeads' | 'midAttention' | 'numClasses';

/** Names of the U-Net fields where a and b differ: the given scalars, the channels per level and the attention levels. */
function trunkDiff(a: UNetConfig, b: UNetConfig, keys: ScalarKey[]): string[] {
  const diff: string[] = keys.filter((k) => a[k] !== b[k]);
  if (JSON.stringify(a.blockOutChannels) !== JSON.stringify(b.blockOutChannels)) diff.push('blockOutChannels');
  if (JSON.stringify(a.attention) !== JSON.stringify(b.attention)) diff.push('attention');
  return diff;
}

/** The (EMA) weights of a video checkpoint, mapped onto preset p's model (see initVideo). */
async function warmStartFrom(dir: string, p: VideoPreset): Promise<{ from: Map<string, Float32Array>; widenedFrom?: number[] }> {
  const ck = await loadCheckpoint(dir, { ema: true });
  const m = ck.config.model, v = p.model.video!;
  if (!m.video) throw new DriftlabError(`${dir} is an image checkpoint; --init-video wants a video checkpoint (use --init-image)`);
  const diff = trunkDiff(m, p.model, ['sampleSize', 'inChannels', 'outChannels', 'layersPerBlock', 'normGroups', 'timeEmbedDim', 'timeEmbedHidden', 'attentionHeads', 'midAttention', 'numClasses']);
  const f = widthFactor(m.blockOutChannels, p.model.blockOutChannels);
  if (f) diff.splice(diff.indexOf('blockOutChannels'), 1); // f x the channels at every level: widened (widen.ts)
  else if (diff.includes('blockOutChannels')) diff[diff.indexOf('blockOutChannels')] = `blockOutChannels (${m.blockOutChannels} -> ${p.model.blockOutChannels}: a warm start may widen every level by one integer factor)`;
  if ((m.video.conditioning ?? 'attention') !== (v.conditioning ?? 'attention')) diff.push('conditioning');
  if (m.video.frames - m.video.contextFrames !== v.frames - v.contextFrames) diff.push('targets per window');
  if (m.video.contextFrames > v.contextFrames) diff.push(`context frames (${m.video.contextFrames} > ${v.contextFrames})`);
  if (diff.length) throw new DriftlabError(`${dir} cannot initialise ${p.name}: ${diff.join(', ')} differ`);
  const from = splitFlat(flatLayout(modelParamSpecs(m)), ck.ema ?? ck.params);
  if (v.conditioning === 'concat' && m.video.contextFrames < v.contextFrames) {
    from.set('conv_in.weight', extendContextConvIn(from.get('conv_in.weight')!, m.inChannels, m.video.contextFrames, v.contextFrames));
  }
  // after the context extension, the old weights have the new model's shapes at the old widths
  if (!f) return { from };
  return { from: widenParams(modelParamSpecs({ ...p.model, blockOutChannels: m.blockOutChannels }), from, modelParamSpecs(p.model), f, p.train.seed), widenedFrom: m.blockOutChannels };
}

/**
 * conv_in weights [3,3,C(1+K0),Cout] of a concat model with K0 context frames -> [3,3,C(1+K),Cout]
 * for K >= K0: the input channels are the target, then the context frames oldest first, so the K0
 * old frames' weights move to the newest K0 slots and the K-K0 older slots start at zero: the
 * widened model computes exactly what the old one did until training gives the older frames weight.
 * K0 = 0 is an image model's conv_in [3,3,C,Cout] (--init-image): the video model starts as the
 * per-frame image model.
 */
export function extendContextConvIn(w: Float32Array, cin: number, K0: number, K: number): Float32Array {
  const n0 = cin * (1 + K0), n = cin * (1 + K), cout = w.length / (9 * n0), shift = (K - K0) * cin;
  if (!Number.isInteger(cout) || K < K0) throw new Error(`conv_in of ${w.length} weights does not fit ${cin} channel(s) x ${1 + K0} frames, or ${K} < ${K0}`);
  const out = new Float32Array(9 * n * cout);
  for (let k = 0; k < 9; k++) for (let i = 0; i < n0; i++) {
    const j = i < cin ? i : i + shift;
    for (let o = 0; o < cout; o++) out[(k * n + j) * cout + o] = w[(k * n0 + i) * cout + o];
  }
  return out;
}

/** Default interval of the in-training rollout check (about 25 s for 16 clips x 20 frames on 2 cores). */
export const ROLLOUT_CHECK_EVERY = 2000;

function trackingCheck(p: VideoPreset, every: number): TrainCheck | undefined {
  if (!(every > 0) || p.model.video!.contextFrames < 1) return undefined;
  const m = { model: p.model, schedule: makeSchedule(p.schedule), prediction: p.objective.prediction, data: p.data };
  return {
    every, file: 'rollout-check.jsonl',
    async run(ema) {
      const r = await rolloutCheck(ema, m);
      const at = (f: number) => `${r.meanError[Math.min(f, r.meanError.length) - 1].toFixed(2)} at ${Math.min(f, r.meanError.length)}`;
      const line = `rollout check (EMA, ${r.clips} held-out clips, DDIM ${ROLLOUT_CHECK.steps}): trajectory error ${at(1)}, ${at(10)}, ${at(20)} px; tracking horizon (mean > ${ROLLOUT_CHECK.threshold} px) ${r.horizon ?? `> ${r.meanError.length}`} frames; ${r.seconds.toFixed(0)} s`;
      return { record: { clips: r.clips, meanError: r.meanError, horizon: r.horizon, threshold: ROLLOUT_CHECK.threshold }, line };
    },
  };
}

function contextCheck(p: VideoPreset, every: number): TrainCheck | undefined {
  if (!(every > 0) || p.model.video!.contextFrames < 1) return undefined;
  const schedule = makeSchedule(p.schedule);
  return {
    every, file: 'context-use.jsonl',
    async run(ema) {
      const model = new UNetModel(p.model, 0);
      try {
        model.setFlat(ema);
        const r = await contextUse(denoiserOf(model), p.model, schedule, p.objective.prediction, p.data, { ...TRAIN_CHECK, seed: 12345 });
        const ratios = r.t.map((t, i) => `t=${t} ${r.ratioOther[i].toFixed(2)}`).join(', ');
        return { record: { t: r.t, mseTrue: r.mseTrue, ratioOther: r.ratioOther, ratioBlank: r.ratioBlank, copyLast: r.copyLast }, line: `context use (other/true x0 MSE, EMA, ${r.windows} windows): ${ratios}` };
      } finally {
        model.dispose();
      }
    },
  };
}
