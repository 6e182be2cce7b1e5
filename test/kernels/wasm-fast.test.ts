/** driftlab's faster wasm BatchMatMul (transposes) and Sum (leading axes) against the cpu backend. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { backendDataIds, relMaxErr, useBackend } from '../helpers/backend.js';
import { Rng } from '../../src/util/rng.js';

const rng = new Rng(11);
const rand = (shape: number[]): { shape: number[]; data: Float32Array } => ({ shape, data: rng.normals(shape.reduce((a, b) => a * b, 1)) });

async function both(f: () => tf.Tensor): Promise<{ wasm: Float32Array; cpu: Float32Array; shapes: number[][] }> {
  await useBackend('cpu');
  const c = f();
  const cpu = (await c.data()) as Float32Array;
  await useBackend('wasm');
  const before = backendDataIds();
  const w = f();
  const wasm = (await w.data()) as Float32Array;
  const shapes = [c.shape, w.shape];
  w.dispose();
  assert.is(backendDataIds(), before, 'wasm kernel leaked buffers');
  return { wasm, cpu, shapes };
}

for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
  test(`matMul transposeA=${ta} transposeB=${tb}, 2-D and batched`, async () => {
    const a = rand(ta ? [70, 130] : [130, 70]);
    const b = rand(tb ? [33, 70] : [70, 33]);
    const r = await both(() => tf.tidy(() => tf.matMul(tf.tensor(a.data, a.shape as any) as tf.Tensor2D, tf.tensor(b.data, b.shape as any) as tf.Tensor2D, ta, tb)));
    assert.equal(r.shapes[0], r.shapes[1]);
    assert.ok(relMaxErr(r.wasm, r.cpu) < 1e-5, `rel err ${relMaxErr(r.wasm, r.cpu)}`);
    const a3 = rand(ta ? [3, 20, 9] : [3, 9, 20]);
    const b3 = rand(tb ? [3, 7, 20] : [3, 20, 7]);
    const r3 = await both(() => tf.tidy(() => tf.matMul(tf.tensor(a3.data, a3.shape as any) as tf.Tensor3D, tf.tensor(b3.data, b3.shape as any) as tf.Tensor3D, ta, tb)));
    assert.equal(r3.shapes[0], [3, 9, 7]);
    assert.ok(relMaxErr(r3.wasm, r3.cpu) < 1e-5);
  });
}

for (const [shape, axis, keepDims] of [
  [[16, 9, 9, 12], [0, 1, 2], false], [[16, 9, 9, 12], [0, 1, 2], true], [[300, 5], 0, false], [[300, 5], [0], true],
  [[8, 10, 6], [0, 1], false], [[8, 10, 6], [1], false], [[8, 10, 6], [0, 2], false], [[4, 5], [0, 1], false], [[2, 3, 4], [0], false],
] as [number[], number | number[], boolean][]) {
  test(`sum ${JSON.stringify(shape)} axis ${JSON.stringify(axis)} keepDims ${keepDims}`, async () => {
    const x = rand(shape);
    const r = await both(() => tf.tidy(() => tf.sum(tf.tensor(x.data, x.shape), axis, keepDims)));
    assert.equal(r.shapes[0], r.shapes[1]);
    assert.ok(relMaxErr(r.wasm, r.cpu) < 1e-5, `rel err ${relMaxErr(r.wasm, r.cpu)}`);
  });
}

test('gradients through matMul and broadcast add still agree with cpu', async () => {
  const x = rand([64, 24]), w = rand([24, 16]), b = rand([16]);
  const f = () => tf.tidy(() => {
    const g = tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.square(tf.add(tf.matMul(xx as tf.Tensor2D, ww as tf.Tensor2D), bb))));
    const [gx, gw, gb] = g([tf.tensor(x.data, x.shape), tf.tensor(w.data, w.shape), tf.tensor(b.data, b.shape)]);
    return tf.concat([gx.flatten(), gw.flatten(), gb.flatten()]);
  });
  const r = await both(f);
  assert.ok(relMaxErr(r.wasm, r.cpu) < 1e-4);
});

test.run();
