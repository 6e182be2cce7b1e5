/**
 * Worker thread of the data-parallel onnx trainer (engine/onnx-train-dp.ts): onnxruntime sessions
 * of the gradient graph (train-graph.ts without adam), one per shard size, built from the bytes
 * the main thread sends with the first shard of that size. The parameters are read from shared
 * memory (written by the main thread between steps) and copied into this worker's own array
 * before each run: onnxruntime-node refuses tensors over a SharedArrayBuffer ("Invalid
 * argument"). The gradient of the shard's mean loss is copied into this worker's shared gradient
 * buffer.
 *
 * Only onnxruntime-node is loaded here (no tfjs, no graph builder): the main thread builds the
 * graphs and the feeds.
 *
 * messages in:  { rows, bytes? , feeds? }  (bytes: build the session for `rows`; feeds: run it)
 *               { close: true }            (release the sessions)
 * messages out: { ready } | { loss } | { built } | { closed } | { error }
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { FeedArray } from './onnx-train.js';

type Ort = typeof import('onnxruntime-node');
type Session = import('onnxruntime-node').InferenceSession;
type OrtTensor = import('onnxruntime-node').Tensor;

const wd = workerData as {
  options: Record<string, unknown>;
  specs: { name: string; shape: number[]; offset: number }[];
  paramsSab: SharedArrayBuffer; gradSab: SharedArrayBuffer;
};
const port = parentPort!;
const firstLine = (e: unknown) => String((e as Error)?.message ?? e).split('\n')[0].slice(0, 200);

async function main() {
  const m = (await import('onnxruntime-node')) as Ort & { default?: Ort };
  const ort: Ort = m.default?.InferenceSession ? m.default : m;
  const shared = new Float32Array(wd.paramsSab), grad = new Float32Array(wd.gradSab);
  const params = new Float32Array(shared.length);
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const pFeeds: Record<string, OrtTensor> = {};
  for (const s of wd.specs) pFeeds[`p:${s.name}`] = new ort.Tensor('float32', params.subarray(s.offset, s.offset + size(s.shape)), s.shape);
  const sessions = new Map<number, Session>();
  port.on('message', async (msg: { rows: number; bytes?: Uint8Array; feeds?: Record<string, FeedArray>; close?: boolean }) => {
    try {
      if (msg.close) {
        for (const s of sessions.values()) await s.release();
        sessions.clear();
        port.postMessage({ closed: true });
        return;
      }
      if (msg.bytes) {
        sessions.get(msg.rows)?.release();
        sessions.set(msg.rows, await ort.InferenceSession.create(msg.bytes, wd.options as any));
      }
      if (!msg.feeds) { port.postMessage({ built: msg.rows }); return; }
      const session = sessions.get(msg.rows);
      if (!session) throw new Error(`no gradient session for ${msg.rows} rows`);
      params.set(shared);
      const feeds: Record<string, OrtTensor> = { ...pFeeds };
      for (const [k, f] of Object.entries(msg.feeds)) feeds[k] = new ort.Tensor(f.type as any, f.data as any, f.dims);
      const r = await session.run(feeds);
      for (const s of wd.specs) grad.set(r[`g:${s.name}`].data as Float32Array, s.offset);
      port.postMessage({ loss: (r.loss.data as Float32Array)[0] });
    } catch (e) {
      port.postMessage({ error: firstLine(e) });
    }
  });
  port.postMessage({ ready: true });
}

main().catch((e) => port.postMessage({ error: firstLine(e) }));
