/**
 * Backend choice: tfjs-node-gpu > tfjs-node > wasm > cpu (the only global mutable state we keep).
 *
 * tfjs-node(-gpu) are optional: they only install where their binary host is reachable, and npm
 * may skip their install script, so each is *tried* and skipped with a reason. wasm is the
 * default that must work everywhere; it gets the conv gradient kernels it lacks (kernels/).
 */
import * as tf from '@tensorflow/tfjs';
import { registerWasmConvGrads } from './kernels/wasm-conv-grads.js';
import { registerWasmFastKernels } from './kernels/wasm-fast.js';
import { DriftlabError } from './util/errors.js';

export type BackendName = 'auto' | 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_CHOICES: BackendName[] = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

export interface BackendInfo {
  /** tfjs backend name as tf.getBackend() reports it */
  backend: string;
  /** the choice that produced it (package name for the native ones) */
  via: string;
  threads: number;
  /** one line for humans: "engine tfjs 4.22.0 · backend wasm (SIMD, 1 thread)" */
  line: string;
  /** why preferred backends were skipped */
  skipped: string[];
}

let current: BackendInfo | null = null;

async function tryNative(pkg: string): Promise<string | null> {
  try {
    await import(pkg);
    return null;
  } catch (e) {
    const msg = (e as Error).message?.split('\n')[0] ?? String(e);
    return msg.includes('Cannot find') ? `${pkg} not installed` : `${pkg} present but unusable (${msg.slice(0, 120)})`;
  }
}

async function useWasm(): Promise<void> {
  await import('@tensorflow/tfjs-backend-wasm');
  registerWasmConvGrads();
  if (process.env.DRIFTLAB_WASM_FAST !== '0') registerWasmFastKernels(); // DRIFTLAB_WASM_FAST=0: A/B measurements
  const ok = await tf.setBackend('wasm');
  if (!ok) throw new Error('tf.setBackend("wasm") returned false');
  await tf.ready();
}

/** Initialise the tensor backend once per process. `choice` comes from --backend. */
export async function initBackend(choice: BackendName = 'auto', opts: { quiet?: boolean } = {}): Promise<BackendInfo> {
  if (current && (choice === 'auto' || current.via === choice)) return current;
  if (!BACKEND_CHOICES.includes(choice)) {
    throw new DriftlabError(`unknown backend '${choice}'; choose one of ${BACKEND_CHOICES.join(', ')}`);
  }
  tf.env().set('PROD', true); // silences tfjs' 'install tfjs-node' banner on the cpu backend
  const skipped: string[] = [];
  let via = '';
  const natives: [BackendName, string][] = [
    ['tensorflow-gpu', '@tensorflow/tfjs-node-gpu'],
    ['tensorflow', '@tensorflow/tfjs-node'],
  ];
  for (const [name, pkg] of natives) {
    if (via || (choice !== 'auto' && choice !== name)) continue;
    const why = await tryNative(pkg);
    if (why === null && (await tf.setBackend('tensorflow'))) {
      await tf.ready();
      via = name;
    } else {
      skipped.push(why ?? `${pkg}: backend 'tensorflow' did not start`);
      if (choice === name) throw new DriftlabError(`backend ${name} is not available here: ${skipped.at(-1)}; use --backend wasm`);
    }
  }
  if (!via && (choice === 'auto' || choice === 'wasm')) {
    try {
      await useWasm();
      via = 'wasm';
    } catch (e) {
      skipped.push(`wasm failed to start (${(e as Error).message})`);
      if (choice === 'wasm') throw new DriftlabError(`backend wasm failed to start: ${(e as Error).message}`);
    }
  }
  if (!via) {
    await tf.setBackend('cpu');
    await tf.ready();
    via = 'cpu';
  }
  const backend = tf.getBackend();
  const detail =
    backend === 'wasm' ? 'SIMD, 1 thread' : backend === 'cpu' ? 'pure JS, slow: last resort' : via;
  const threads = backend === 'wasm' || backend === 'cpu' ? 1 : 0;
  const line = `engine tfjs ${tf.version.tfjs} · backend ${backend} (${detail})`;
  current = { backend, via, threads, line, skipped };
  if (!opts.quiet) process.stderr.write(`driftlab: ${line}\n`);
  return current;
}

export function backendInfo(): BackendInfo | null {
  return current;
}
