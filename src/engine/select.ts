/**
 * Which engine runs the network for forward-only commands (sample, quickstart, later eval and
 * rollouts). tfjs stays the reference and the training engine.
 *
 *   tfjs  the model's own tfjs forward on the active backend
 *   onnx  the model exported in memory (or an exported .onnx file), run by onnxruntime-node
 *   auto  onnx where onnxruntime-node loads and the model exports; otherwise tfjs, after one
 *         warning line saying why
 */
import * as tf from '@tensorflow/tfjs';
import { backendInfo } from '../backend.js';
import type { UNetModel } from '../diffusion/model.js';
import type { Denoiser } from '../diffusion/samplers.js';
import { DriftlabError } from '../util/errors.js';
import { exportOnnx } from './export.js';
import { OnnxUNet } from './onnx-engine.js';

export type EngineChoice = 'auto' | 'tfjs' | 'onnx';
export const ENGINE_CHOICES: EngineChoice[] = ['auto', 'tfjs', 'onnx'];

export interface Engine {
  name: 'tfjs' | 'onnx';
  /** one line for humans: engine, version, threads */
  line: string;
  /** an int8 .onnx file: its scheme and the CPU's int8 kernels in one line (int8-scheme.ts) */
  int8Line?: string;
  net: Denoiser;
  dispose(): Promise<void>;
}

export interface EngineOptions {
  /** onnx: intra-op threads (default all cores) */
  threads?: number;
  /** onnx: run this exported file instead of exporting the model in memory */
  onnxFile?: string;
  /** where the fallback warning goes (default stderr) */
  warn?: (line: string) => void;
}

/** model: the loaded tfjs model; tfjsNet: its denoiser (used for the tfjs engine). */
export async function createEngine(choice: EngineChoice, model: UNetModel, tfjsNet: Denoiser, o: EngineOptions = {}): Promise<Engine> {
  if (!ENGINE_CHOICES.includes(choice)) throw new DriftlabError(`unknown engine '${choice}'; choose one of ${ENGINE_CHOICES.join(', ')}`);
  if (o.onnxFile && choice === 'tfjs') throw new DriftlabError('--onnx FILE runs on the onnx engine; drop --engine tfjs');
  const tfjs = (): Engine => ({
    name: 'tfjs', line: backendInfo()?.line ?? `engine tfjs ${tf.version.tfjs} · backend ${tf.getBackend()}`, net: tfjsNet, dispose: async () => {},
  });
  if (choice === 'tfjs') return tfjs();
  let why: string;
  try {
    const source = o.onnxFile ?? exportOnnx(model.config, model.getFlat()).bytes;
    const unet = await OnnxUNet.create(source, model.config, { threads: o.threads });
    return { name: 'onnx', line: unet.line, int8Line: unet.int8Line ?? undefined, net: unet.denoiser(), dispose: () => unet.release() };
  } catch (e) {
    // an explicit choice (or an explicit file) must not silently become something else
    if (!(e instanceof DriftlabError) || choice === 'onnx' || o.onnxFile) throw e;
    why = e.message;
  }
  (o.warn ?? ((l) => process.stderr.write(`${l}\n`)))(`driftlab: warning: onnx engine unavailable, using tfjs: ${why}`);
  return tfjs();
}
