/** driftlab train-video: train the space-time U-Net on Moving-MNIST windows. */
import type { CommandModule } from 'yargs';
import * as os from 'node:os';
import { initBackend, BackendName } from '../backend.js';
import { ANCHOR_GAP, VIDEO_PRESETS, getVideoPreset } from '../video/presets.js';
import { ROLLOUT_CHECK_EVERY, trainVideo } from '../video/train-video.js';
import { SELF_CONTEXT_DEFAULTS, SELF_CONTEXT_TARGETS } from '../video/self-context.js';
import { DriftlabError } from '../util/errors.js';
import { TRAIN_DEVICES, TRAIN_ENGINES, TrainDevice, TrainEngineChoice } from '../diffusion/train-engine.js';
import { nonNegative, positiveInt } from './common.js';

export const trainVideoCommand: CommandModule<any, any> = {
  command: 'train-video',
  describe: 'train the space-time U-Net on Moving-MNIST clip windows (K context frames, loss on the targets)',
  builder: (y) => y
    .option('preset', { type: 'string', default: 'mmnist-small', describe: `video recipe: ${Object.keys(VIDEO_PRESETS).join(', ')}` })
    .option('out', { type: 'string', demandOption: true, describe: 'checkpoint folder' })
    .option('resume', { type: 'boolean', default: false })
    .option('overwrite', { type: 'boolean', default: false })
    .option('init-image', { type: 'string', describe: 'initialise the spatial layers from this image checkpoint (temporal layers start as identity)' })
    .option('init-video', { type: 'string', describe: 'warm start from this video checkpoint (EMA weights): same U-Net trunk and conditioning; with concat conditioning it may have fewer context frames (their weights feed the newest frames; older ones start at zero). A new run: step 0, fresh optimizer' })
    .option('channels', { type: 'string', describe: "channels per U-Net level, comma-separated (default: the preset's, for example 32,64,64 for mmnist-small). With --init-video from a model with 1/f of them at every level (f an integer), the warm start widens it to compute the same function (Net2WiderNet-style copies with random input shares)" })
    .option('context-frames', { type: 'number', describe: "context frames K per window (default: the preset's); the targets per window stay the preset's" })
    .option('anchor-frames', { type: 'number', describe: 'identity conditioning (concat presets): A more context slots that hold the first A frames of the clip (in a rollout: the first A frames of the given context, kept for the whole rollout), so the model sees what the digits look like however long it has generated; the other slots keep the newest frames. With --init-video from a model without them, the anchor slots start at zero weight (the warm start computes the old model). Default 0' })
    .option('anchor-gap', { type: 'number', describe: `with --anchor-frames: the newest frames of a training window start 0..G frames into its clip (default ${ANCHOR_GAP}); rollouts go further, so G should be past where positions still follow from the anchors` })
    .option('steps', { type: 'number' })
    .option('minutes', { type: 'number', describe: 'stop after this many minutes (checkpointed; --resume continues)' })
    .option('batch-size', { type: 'number', describe: 'clips per step' })
    .option('lr', { type: 'number' })
    .option('lr-decay-from', { type: 'number', describe: 'cosine learning-rate decay from this step to 0 at the last step (--steps); unset = constant lr after the warm-up. Applies from the resumed step on: pass it again with --resume' })
    .option('context-noise', { type: 'number', describe: 'context noise augmentation: context timesteps drawn from 0..N (0 = clean context)' })
    .option('context-level', { type: 'boolean', describe: 'concat models: tell the network the context noise level (the newest context frame\'s timestep, embedded and added to the time embedding; noise-conditioning augmentation). Needs --context-noise N > 0; sample with the context-noise corrector to show the context at a level, or clean (level 0) by default' })
    .option('context-dropout', { type: 'number', describe: 'probability of training a window with a blank context (0 = never; history guidance needs > 0)' })
    .option('context-jitter', { type: 'number', describe: 'context jitter in canvas px: each context frame draws every digit displaced by N(0, sigma^2) per axis from its true position, the targets stay on the true trajectory (trains the model to follow the true motion through its own position errors; 0 = off)' })
    .option('overlap-oversample', { type: 'number', describe: 'probability that a training window is a hard one: the stream skips ahead to the next clip whose two digits overlap at the last context frame (true top-left corners under --overlap-near px), the contexts where rollouts fail most (docs/EXPERIMENTS.md); 0 = every clip in turn' })
    .option('overlap-frames', { type: 'number', describe: 'with --overlap-oversample: a window is hard when its digits overlap at any of its last N context frames (default 1, the last frame only; the context length K takes in the frames after a crossing, where rollouts lose a digit as the two separate)' })
    .option('overlap-near', { type: 'number', describe: 'canvas px under which two digits count as overlapping for --overlap-oversample (default 10; digits are 28 px wide)' })
    .option('self-context', { type: 'number', describe: 'probability that a training window comes from the model\'s own rollouts (scheduled sampling / DAgger with the simulator as oracle): every --self-context-every steps the EMA weights roll out --self-context-clips fresh clips for --self-context-frames frames; a window\'s context ends with the model\'s own frames, its target is the true continuation; only windows whose generated frames still track (--self-context-max-error) are kept. The pool is saved in the checkpoint folder (self-context.bin) for exact resume. 0 or unset = off' })
    .option('self-context-every', { type: 'number', describe: `make a new pool of own rollouts every N steps, a multiple of --checkpoint-every (default ${SELF_CONTEXT_DEFAULTS.every})` })
    .option('self-context-clips', { type: 'number', describe: `clips rolled out per pool (default ${SELF_CONTEXT_DEFAULTS.clips})` })
    .option('self-context-frames', { type: 'number', describe: `frames generated per pool clip: windows whose context ends 1..N frames into the rollout (default ${SELF_CONTEXT_DEFAULTS.frames})` })
    .option('self-context-max-error', { type: 'number', describe: `keep a pool window only while every generated frame in its context is within this many canvas px of the true digit positions (default ${SELF_CONTEXT_DEFAULTS.maxError}); past it the true continuation cannot be read from the context` })
    .option('self-context-steps', { type: 'number', describe: `DDIM steps per generated pool frame (default ${SELF_CONTEXT_DEFAULTS.steps}, as the drift studies sample)` })
    .option('self-context-target', { choices: SELF_CONTEXT_TARGETS, describe: "what a pool window's target is: shifted, the simulator's continuation with every digit displaced by the position error of the context's last own frame (the expert move from the state the context shows: repair the frames, keep the motion; default), or truth, the simulator's own continuation (measured to teach a hedge, docs/EXPERIMENTS.md)" })
    .option('independent-t', { type: 'boolean', describe: 'one noise level per target frame (Diffusion Forcing) instead of one per window' })
    .option('joint', { type: 'number', describe: 'attention models: probability of training a window jointly, its context noised at the targets\' level and counted in the loss (the model then reconstructs its context from the targets, which reconstruction-guidance needs; 0 = never)' })
    .option('prediction', { choices: ['epsilon', 'v', 'x0'], describe: "what the network predicts (default: the preset's)" })
    .option('loss-weighting', { choices: ['uniform', 'min-snr'], describe: "per-timestep loss weight (default: the preset's)" })
    .option('snr-gamma', { type: 'number', describe: 'gamma of min-SNR weighting' })
    .option('check-every', { type: 'number', describe: 'log the context-use check to context-use.jsonl every N steps (default: every checkpoint; 0 = never)' })
    .option('rollout-check-every', { type: 'number', describe: `log the rollout check to rollout-check.jsonl every N steps: the EMA weights roll out 16 held-out clips (test digits, the same at every check) for 20 frames, DDIM 10, and the mean trajectory error per frame and the tracking horizon (mean > 8 px) are printed, so a run whose rollouts drift is seen while it trains (about 25 s on 2 cores; default every ${ROLLOUT_CHECK_EVERY} steps; 0 = never)` })
    .option('stochastic', { type: 'boolean', describe: 'train on SMMNIST (random direction at each bounce)' })
    .option('checkpoint-every', { type: 'number' })
    .option('engine', { choices: TRAIN_ENGINES, default: 'auto', describe: 'what runs a training step: onnx (forward, backward and AdamW as onnxruntime graphs; sessions: --workers), tfjs, or auto (onnx where onnxruntime-node loads)' })
    .option('device', { choices: TRAIN_DEVICES, default: 'cpu', describe: 'onnx engine: cpu, or cuda where onnxruntime-node was installed with its CUDA provider (README; one session, --workers does not apply)' })
    .option('threads', { type: 'number', describe: 'onnx engine: intra-op threads per session (default: cores / --workers, at least 1; with --workers 1, all cores)' })
    .option('workers', { type: 'number', default: os.availableParallelism(), describe: `data-parallel workers, clips kept whole (1 = one in-process step). tfjs: one backend each. onnx on cpu: one gradient session each over its shard (the optimizer on the main thread); 1 = one session of the whole step on --threads. Default: the core count, so onnx runs ${os.availableParallelism()} sessions x 1 intra-op thread (measured faster than 1 session x all threads, docs/BENCHMARKS.md session 8). --device cuda: always one session` }),
  handler: async (a) => {
    const p = getVideoPreset(a.preset);
    const tc = p.train;
    if (a.steps !== undefined) tc.steps = positiveInt('steps', a.steps);
    if (a.batchSize !== undefined) tc.batchSize = positiveInt('batch-size', a.batchSize);
    if (a.lr !== undefined) tc.lr = nonNegative('lr', a.lr);
    if (a.lrDecayFrom !== undefined) tc.lrDecayFrom = Number(a.lrDecayFrom); // checked by runTraining
    if (a.contextNoise !== undefined) tc.maxContextT = Math.floor(nonNegative('context-noise', a.contextNoise));
    if (a.checkpointEvery !== undefined) tc.checkpointEvery = positiveInt('checkpoint-every', a.checkpointEvery);
    if (a.stochastic !== undefined) p.data.stochastic = a.stochastic;
    if (a.contextDropout !== undefined) {
      const d = Number(a.contextDropout);
      if (!(d >= 0 && d < 1)) throw new DriftlabError(`--context-dropout must be in [0, 1), got ${a.contextDropout}`);
      tc.contextDropout = d;
    }
    if (a.contextLevel) p.model.video = { ...p.model.video!, contextLevel: true }; // checked by trainVideo
    if (a.contextJitter !== undefined) tc.contextJitter = Number(a.contextJitter); // checked by trainVideo
    if (a.independentT !== undefined) tc.independentT = a.independentT;
    if (a.joint !== undefined) tc.joint = Number(a.joint); // checked by trainVideo
    if (a.overlapOversample !== undefined) tc.overlapOversample = Number(a.overlapOversample); // checked by trainVideo
    if (a.overlapNear !== undefined) tc.overlapNear = Number(a.overlapNear); // checked by trainVideo
    if (a.overlapFrames !== undefined) tc.overlapFrames = Number(a.overlapFrames); // checked by trainVideo
    const sc = ['selfContextEvery', 'selfContextClips', 'selfContextFrames', 'selfContextMaxError', 'selfContextSteps', 'selfContextTarget'].filter((k) => a[k] !== undefined);
    if (sc.length && a.selfContext === undefined) throw new DriftlabError(`--${sc[0].replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --self-context P`);
    if (a.selfContext !== undefined) {
      tc.selfContext = { // checked by trainVideo
        p: Number(a.selfContext), every: Number(a.selfContextEvery ?? SELF_CONTEXT_DEFAULTS.every), clips: Number(a.selfContextClips ?? SELF_CONTEXT_DEFAULTS.clips),
        frames: Number(a.selfContextFrames ?? SELF_CONTEXT_DEFAULTS.frames), maxError: Number(a.selfContextMaxError ?? SELF_CONTEXT_DEFAULTS.maxError), steps: Number(a.selfContextSteps ?? SELF_CONTEXT_DEFAULTS.steps),
        target: a.selfContextTarget ?? SELF_CONTEXT_DEFAULTS.target,
      };
    }
    if (a.prediction !== undefined) p.objective.prediction = a.prediction;
    if (a.lossWeighting !== undefined) p.objective.weighting = a.lossWeighting;
    if (a.snrGamma !== undefined) {
      if (!(Number(a.snrGamma) > 0)) throw new DriftlabError(`--snr-gamma must be > 0, got ${a.snrGamma}`);
      p.objective.snrGamma = Number(a.snrGamma);
    }
    if (a.contextFrames !== undefined) {
      const v0 = p.model.video!, K = positiveInt('context-frames', a.contextFrames), N = v0.frames - v0.contextFrames;
      if (K + N > v0.maxFrames) throw new DriftlabError(`--context-frames ${K} gives ${K + N}-frame windows, more than the model's maxFrames ${v0.maxFrames}`);
      p.model.video = { ...v0, contextFrames: K, frames: K + N };
    }
    if (a.anchorFrames !== undefined && Number(a.anchorFrames) !== 0) {
      const v0 = p.model.video!, A = positiveInt('anchor-frames', a.anchorFrames);
      if (v0.conditioning !== 'concat') throw new DriftlabError(`--anchor-frames needs a concat-conditioned preset; ${p.name} conditions by ${v0.conditioning ?? 'attention'}`);
      if (v0.frames + A > v0.maxFrames) throw new DriftlabError(`--anchor-frames ${A} gives ${v0.frames + A}-frame windows, more than the model's maxFrames ${v0.maxFrames}`);
      p.model.video = { ...v0, contextFrames: v0.contextFrames + A, frames: v0.frames + A, anchorFrames: A };
    }
    if (a.anchorGap !== undefined) tc.anchorGap = Number(a.anchorGap); // checked by trainVideo
    if (a.channels !== undefined) {
      const ch = String(a.channels).split(',').map((x) => Number(x.trim()));
      if (ch.length !== p.model.blockOutChannels.length || !ch.every((c) => Number.isInteger(c) && c > 0 && c % p.model.normGroups === 0)) {
        throw new DriftlabError(`--channels must be ${p.model.blockOutChannels.length} positive integers divisible by the ${p.model.normGroups} norm groups, for example ${p.model.blockOutChannels.map((c) => 2 * c).join(',')}; got ${a.channels}`);
      }
      p.model.blockOutChannels = ch;
    }
    const checkEvery = a.checkEvery === undefined ? undefined : Math.floor(nonNegative('check-every', a.checkEvery));
    const rolloutCheckEvery = a.rolloutCheckEvery === undefined ? undefined : Math.floor(nonNegative('rollout-check-every', a.rolloutCheckEvery));
    if (a.minutes !== undefined && !(a.minutes > 0)) throw new DriftlabError(`--minutes must be > 0, got ${a.minutes}`);
    tc.seed = a.seed;
    const workers = positiveInt('workers', a.workers);
    const threads = a.threads === undefined ? undefined : positiveInt('threads', a.threads);
    await initBackend(a.backend as BackendName);
    const v = p.model.video!;
    process.stderr.write(`driftlab: training ${p.name}: ${p.model.sampleSize}x${p.model.sampleSize} frames, windows of ${v.frames} (${v.contextFrames} context${v.anchorFrames ? `, the first ${v.anchorFrames} anchor${v.anchorFrames > 1 ? 's' : ''}` : ''}), ${tc.batchSize} clips/step\n`);
    const r = await trainVideo({ preset: p, out: a.out, resume: a.resume, overwrite: a.overwrite, workers, backend: a.backend, minutes: a.minutes, initImage: a.initImage, initVideo: a.initVideo, checkEvery, rolloutCheckEvery,
      engine: a.engine as TrainEngineChoice, device: a.device as TrainDevice, threads,
    });
    process.stdout.write(`trained to step ${r.steps} in ${r.seconds.toFixed(0)} s; last loss ${r.lastLoss.toFixed(4)}${r.stoppedEarly ? ' (time limit reached; --resume continues)' : ''}\ncheckpoint: ${a.out}\n`);
  },
};
