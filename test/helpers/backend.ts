/**
 * Shared test setup: start the wasm backend once (registers driftlab's conv-gradient kernels) and
 * switch between 'wasm' and the pure-JS 'cpu' oracle explicitly. initBackend() caches its choice
 * and does not switch back by itself, so tests must call useBackend() before each block.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend.js';
import * as assert from 'uvu/assert';

let started = false;

export async function ensureWasm(): Promise<void> {
  if (!started) {
    await initBackend('wasm', { quiet: true });
    started = true;
  }
  await useBackend('wasm');
}

export async function useBackend(name: 'wasm' | 'cpu'): Promise<void> {
  if (name === 'wasm' && !started) {
    await initBackend('wasm', { quiet: true });
    started = true;
  }
  if (tf.getBackend() !== name) {
    const ok = await tf.setBackend(name);
    if (!ok) throw new Error(`tf.setBackend(${name}) failed`);
  }
  await tf.ready();
  assert.is(tf.getBackend(), name);
}

/** Number of data buffers the active backend holds (catches leaks the engine cannot see). */
export function backendDataIds(): number {
  return (tf.engine().backend as any).numDataIds() as number;
}

/** max |a-b| / max |ref| */
export function relMaxErr(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (got.length !== ref.length) throw new Error(`length ${got.length} vs ${ref.length}`);
  let d = 0, m = 0;
  for (let i = 0; i < ref.length; i++) {
    d = Math.max(d, Math.abs(got[i] - ref[i]));
    m = Math.max(m, Math.abs(ref[i]));
  }
  return m === 0 ? d : d / m;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return Number.isNaN(d) ? Infinity : d;
}

export { throwsDriftlab, rejectsDriftlab } from './common.js';
