/**
 * One entry point for "the network a config describes": the image U-Net, or the space-time
 * U-Net when the config has a `video` section. Training, checkpoints, export and info go
 * through here, so they work for both.
 */
import type { Ops } from '../engine/ops.js';
import { videoApply, videoParamSpecs } from '../video/st-unet.js';
import type { UNetConfig } from './config.js';
import type { Params } from './layers.js';
import { ParamSpec, unetApply, unetParamSpecs } from './unet.js';

export function modelParamSpecs(c: UNetConfig): ParamSpec[] {
  return c.video ? videoParamSpecs(c) : unetParamSpecs(c);
}

/** x: [N,H,W,C] (N = B*F for video, frame index fastest), t: [N] -> [N,H,W,Cout] */
export function modelApply<T>(o: Ops<T>, P: Params<T>, c: UNetConfig, x: T, t: T, labels?: T, frames?: number): T {
  return c.video ? videoApply(o, P, c, x, t, labels, frames) : unetApply(o, P, c, x, t, labels);
}
