/**
 * Synchronous figure rendering for synchronous callers (writeChart): vega and resvg render
 * asynchronously, so the job runs on one long-lived worker thread while the caller waits on a
 * shared flag (Atomics.wait), then reads the reply with receiveMessageOnPort. The worker is
 * unref'd, so it never keeps the process alive.
 */
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { DriftlabError } from '../util/errors.js';

let pool: { worker: Worker; port: MessagePort } | null = null;

function worker(): { worker: Worker; port: MessagePort } {
  if (pool) return pool;
  const { port1, port2 } = new MessageChannel();
  const w = new Worker(new URL('./render-worker.js', import.meta.url), { workerData: { port: port2 }, transferList: [port2] });
  w.unref();
  port1.unref();
  w.on('error', () => (pool = null));
  w.on('exit', () => (pool = null));
  pool = { worker: w, port: port1 };
  return pool;
}

/** Renders specFile to each output path (.svg/.png/.pdf), blocking until done (at most timeoutMs). */
export function renderSpecFileSync(specFile: string, outputs: string[], opts: { scale?: number; timeoutMs?: number } = {}): void {
  const { worker: w, port } = worker();
  const flag = new SharedArrayBuffer(4);
  w.postMessage({ specFile, outputs, scale: opts.scale, flag });
  const r = Atomics.wait(new Int32Array(flag), 0, 0, opts.timeoutMs ?? 120_000);
  const reply = receiveMessageOnPort(port)?.message as { error?: string; user?: boolean } | undefined;
  if (r === 'timed-out' || !reply) {
    void w.terminate();
    pool = null;
    throw new DriftlabError(`rendering ${specFile} did not finish${r === 'timed-out' ? ` within ${(opts.timeoutMs ?? 120_000) / 1000} s` : ''} (the render worker stopped)`);
  }
  if (reply.error) throw reply.user ? new DriftlabError(reply.error) : new Error(`rendering ${specFile}: ${reply.error}`);
}
