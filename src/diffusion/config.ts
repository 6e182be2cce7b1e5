/**
 * U-Net configuration in the spirit of diffusers' UNet2DModel config.json, plus presets.
 * Field names are camelCase here; config.json stores them as written.
 */
import { DriftlabError } from '../util/errors.js';

export interface UNetConfig {
  sampleSize: number;
  inChannels: number;
  outChannels: number;
  /** channels per resolution level; level i runs at sampleSize / 2^i */
  blockOutChannels: number[];
  /** ResBlocks per level on the way down (and up) */
  layersPerBlock: number;
  /** self-attention after each ResBlock of level i */
  attention: boolean[];
  /** self-attention between the two middle ResBlocks */
  midAttention: boolean;
  attentionHeads: number;
  normGroups: number;
  normEps: number;
  /** width of the sinusoidal timestep features */
  timeEmbedDim: number;
  /** width of the time-embedding MLP (and of the class embedding) */
  timeEmbedHidden: number;
  /** number of classes for conditioning; 0 = unconditional. Index numClasses is the null class. */
  numClasses: number;
  /** present for the space-time (video) U-Net: temporal attention across frames (src/video/) */
  video?: VideoConfig;
}

/**
 * The video U-Net = the image U-Net applied per frame + temporal attention after the blocks of
 * the levels flagged in `temporal` (and in the middle if `temporalMid`).
 */
export interface VideoConfig {
  /** frames per window the model is trained and exported with (K context + F-K targets) */
  frames: number;
  /** context frames of a training window */
  contextFrames: number;
  temporal: boolean[];
  temporalMid: boolean;
  temporalHeads: number;
  /** frames covered by the relative position table (>= frames) */
  maxFrames: number;
  causal: boolean;
  /**
   * How the targets see the context. 'attention' (default): context frames pass through the
   * network beside the targets and reach them only through temporal attention. 'concat' (MCVD,
   * Voleti et al. 2022): the K context frames are stacked as extra input channels of every
   * target's pass and only the targets run through the network (temporal attention then mixes
   * the targets; with several targets a learned frame-position embedding tells them apart).
   */
  conditioning?: 'attention' | 'concat';
  /**
   * concat only: the network is told the context's noise level (noise-conditioning augmentation,
   * as in GameNGen, Valevski et al. 2024): the timestep of the newest context frame, through the
   * sinusoidal features and one linear layer (zero-initialised, so a warm start computes exactly the
   * old model), added to each target's time embedding. Trained with context noise
   * (train-video --context-noise N); sampled at the level the caller shows the context at.
   */
  contextLevel?: boolean;
  /**
   * concat only, identity conditioning: the first `anchorFrames` of the contextFrames slots hold
   * the first frames of the clip (in a rollout: of the given real context, kept for the whole
   * rollout), the other slots the newest frames. The anchors show what the digits look like
   * however long the model has been generating; training draws the newest frames from 0..anchorGap
   * frames into the clip (train-video --anchor-frames, --anchor-gap). 0 or unset: all slots are
   * the newest frames.
   */
  anchorFrames?: number;
}

/** The anchor slots of a video model's context (0 without identity conditioning). */
export const anchorFramesOf = (v: VideoConfig): number => v.anchorFrames ?? 0;

/** The reference network of shared/bench/UNET_SPEC.md (unconditional). */
export const SPEC_UNET: UNetConfig = {
  sampleSize: 28, inChannels: 1, outChannels: 1,
  blockOutChannels: [32, 64, 64], layersPerBlock: 1, attention: [false, false, true], midAttention: true,
  attentionHeads: 1, normGroups: 8, normEps: 1e-5, timeEmbedDim: 32, timeEmbedHidden: 128, numClasses: 0,
};

export function validateUNetConfig(c: UNetConfig): void {
  const bad = (m: string) => { throw new DriftlabError(`invalid model config: ${m}`); };
  const L = c.blockOutChannels?.length ?? 0;
  if (L < 1) bad('blockOutChannels must list at least one level');
  if (!Array.isArray(c.attention) || c.attention.length !== L) bad(`attention must have one flag per level (${L})`);
  if (!(c.layersPerBlock >= 1)) bad('layersPerBlock must be >= 1');
  if (c.sampleSize % 2 ** (L - 1) !== 0 && c.sampleSize % 2 ** (L - 1) !== 0) {
    // odd sizes are allowed by the stride-2 convs (28 -> 14 -> 7), but the decoder must map back:
  }
  let s = c.sampleSize;
  for (let i = 0; i < L - 1; i++) {
    if (s % 2 !== 0) bad(`sampleSize ${c.sampleSize} cannot be halved ${L - 1} times (level ${i} has odd size ${s})`);
    s /= 2;
  }
  for (const ch of [...c.blockOutChannels]) {
    if (ch % c.normGroups !== 0) bad(`channels ${ch} not divisible by normGroups ${c.normGroups}`);
  }
  for (let i = 0; i < L; i++) {
    if (c.attention[i] && c.blockOutChannels[i] % c.attentionHeads !== 0) bad(`channels ${c.blockOutChannels[i]} not divisible by attentionHeads ${c.attentionHeads}`);
  }
  if (c.timeEmbedDim % 2 !== 0) bad('timeEmbedDim must be even');
  if (c.video) {
    const v = c.video;
    if (!Array.isArray(v.temporal) || v.temporal.length !== L) bad(`video.temporal must have one flag per level (${L})`);
    if (!(Number.isInteger(v.frames) && v.frames >= 1 && v.frames <= v.maxFrames)) bad(`video.frames must be an integer in 1..maxFrames (${v.maxFrames})`);
    if (!(Number.isInteger(v.contextFrames) && v.contextFrames >= 0 && v.contextFrames < v.frames)) bad('video.contextFrames must be in 0..frames-1');
    if (v.conditioning !== undefined && v.conditioning !== 'attention' && v.conditioning !== 'concat') bad(`video.conditioning must be 'attention' or 'concat', got '${v.conditioning}'`);
    if (v.conditioning === 'concat' && c.inChannels !== c.outChannels) bad('video.conditioning concat needs inChannels = outChannels');
    if (v.anchorFrames !== undefined && !(Number.isInteger(v.anchorFrames) && v.anchorFrames >= 0 && v.anchorFrames < v.contextFrames)) bad('video.anchorFrames must be an integer in 0..contextFrames-1 (at least one context slot holds the newest frames)');
    if (v.anchorFrames && v.conditioning !== 'concat') bad('video.anchorFrames needs concat conditioning');
    if (v.contextLevel && v.conditioning !== 'concat') bad('video.contextLevel needs concat conditioning (attention models take one timestep per frame already)');
    for (let i = 0; i < L; i++) {
      if (v.temporal[i] && c.blockOutChannels[i] % v.temporalHeads !== 0) bad(`channels ${c.blockOutChannels[i]} not divisible by video.temporalHeads ${v.temporalHeads}`);
    }
  }
  if (!(c.numClasses >= 0)) bad('numClasses must be >= 0');
}
