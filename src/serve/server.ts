/**
 * HTTP endpoint for sampling (loopback by default).
 *
 *   POST /generate  {n, steps, sampler, guidance, label, seed, eta}  -> PNG grid, or .npy
 *                   (float32 [n,H,W] in [0,1]) with `Accept: application/octet-stream`
 *   GET  /healthz   -> {"status":"ok", ...}
 *
 * Requests run one at a time (sampling saturates the engine); up to `queue` more wait, and
 * the rest get 503. Validation errors are 4xx with a one-line JSON {"error": "..."}.
 */
import * as http from 'node:http';
import { Pipeline, generate } from '../diffusion/pipeline.js';
import { SAMPLERS, SamplerName } from '../diffusion/samplers.js';
import { encodeNpy } from '../io/npy.js';
import { imageGrid, rasterToPng } from '../plot/grid.js';

export interface ServeOptions {
  maxN: number;
  queue: number;
  maxBodyBytes: number;
}

export interface GenerateRequest {
  n: number;
  steps: number;
  sampler: SamplerName;
  guidance: number;
  label?: number | null;
  seed: number;
  eta: number;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

/** Validate a request body against the model; throws HttpError(400/422). */
export function parseGenerateRequest(body: string, p: Pipeline, o: ServeOptions): GenerateRequest {
  let j: any;
  try { j = JSON.parse(body.length ? body : '{}'); } catch { throw new HttpError(400, 'body is not valid JSON'); }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new HttpError(400, 'body must be a JSON object');
  const known = new Set(['n', 'steps', 'sampler', 'guidance', 'label', 'seed', 'eta']);
  const unknown = Object.keys(j).filter((k) => !known.has(k));
  if (unknown.length) throw new HttpError(422, `unknown field '${unknown[0]}'; allowed: ${[...known].join(', ')}`);
  const int = (k: string, def: number, lo: number, hi: number) => {
    const v = j[k] ?? def;
    if (!Number.isInteger(v) || v < lo || v > hi) throw new HttpError(422, `${k} must be an integer in ${lo}..${hi}, got ${JSON.stringify(j[k])}`);
    return v as number;
  };
  const num = (k: string, def: number, lo: number, hi: number) => {
    const v = j[k] ?? def;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) throw new HttpError(422, `${k} must be a number in ${lo}..${hi}, got ${JSON.stringify(j[k])}`);
    return v;
  };
  const sampler = j.sampler ?? 'ddim';
  if (!SAMPLERS.includes(sampler)) throw new HttpError(422, `unknown sampler ${JSON.stringify(sampler)}; use ddim or ddpm`);
  const K = p.config.model.numClasses;
  let label: number | null | undefined = j.label;
  if (label !== undefined && label !== null) {
    if (K === 0) throw new HttpError(422, 'this model is unconditional; omit label');
    label = int('label', 0, 0, K - 1);
  }
  const guidance = num('guidance', K > 0 ? 2 : 1, 0, 50);
  if (K === 0 && guidance !== 1) throw new HttpError(422, 'guidance needs a class-conditional model; use 1');
  return {
    n: int('n', 1, 1, o.maxN), steps: int('steps', 10, 1, p.schedule.T), sampler, guidance, label,
    seed: int('seed', 0, 0, 2 ** 32 - 1), eta: num('eta', 0, 0, 1),
  };
}

export async function runRequest(p: Pipeline, r: GenerateRequest, asNpy: boolean): Promise<{ type: string; body: Uint8Array }> {
  const K = p.config.model.numClasses;
  const labels = K > 0 ? Int32Array.from({ length: r.n }, (_, i) => (r.label === null ? K : r.label ?? i % K)) : undefined;
  const g = await generate(p, {
    n: r.n, batch: r.n, sampler: r.sampler, steps: r.steps, eta: r.eta, guidance: r.guidance, labels, clipX0: true, seed: r.seed,
  });
  const S = p.config.model.sampleSize;
  if (asNpy) return { type: 'application/octet-stream', body: encodeNpy({ dtype: 'float32', shape: [r.n, S, S], data: g.images, fortranOrder: false }) };
  return { type: 'image/png', body: rasterToPng(imageGrid(g.images, r.n, S, S, { nrow: Math.min(8, r.n), scale: 2 })) };
}

export function createServer(p: Pipeline, o: ServeOptions, log: (line: string) => void = () => undefined) {
  let busy = false;
  const waiting: (() => void)[] = [];
  const acquire = () => new Promise<void>((resolve, reject) => {
    if (!busy) { busy = true; resolve(); return; }
    if (waiting.length >= o.queue) { reject(new HttpError(503, `busy: ${o.queue} requests already queued; retry later`)); return; }
    waiting.push(resolve);
  });
  const release = () => { const next = waiting.shift(); if (next) next(); else busy = false; };
  const send = (res: http.ServerResponse, status: number, type: string, body: Uint8Array | string) => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body as any) });
    res.end(body);
  };
  const server = http.createServer((req, res) => {
    const t0 = performance.now();
    const done = (status: number) => log(`${req.method} ${req.url} ${status} ${(performance.now() - t0).toFixed(0)} ms`);
    const fail = (e: unknown) => {
      const status = e instanceof HttpError ? e.status : 500;
      const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
      send(res, status, 'application/json', JSON.stringify({ error: msg }) + '\n');
      done(status);
    };
    if (req.method === 'GET' && req.url === '/healthz') {
      send(res, 200, 'application/json', JSON.stringify({ status: 'ok', busy, queued: waiting.length, model: p.config.model.sampleSize, classes: p.config.model.numClasses }) + '\n');
      return done(200);
    }
    if (req.url !== '/generate') return fail(new HttpError(404, `no route ${req.method} ${req.url}; use POST /generate or GET /healthz`));
    if (req.method !== 'POST') return fail(new HttpError(405, 'use POST /generate'));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > o.maxBodyBytes) { fail(new HttpError(413, `body larger than ${o.maxBodyBytes} bytes`)); req.destroy(); }
      else chunks.push(c);
    });
    req.on('end', async () => {
      if (res.writableEnded) return;
      let r: GenerateRequest;
      try { r = parseGenerateRequest(Buffer.concat(chunks).toString('utf8'), p, o); } catch (e) { return fail(e); }
      try { await acquire(); } catch (e) { return fail(e); }
      try {
        const asNpy = (req.headers.accept ?? '').includes('application/octet-stream');
        const out = await runRequest(p, r, asNpy);
        send(res, 200, out.type, out.body);
        done(200);
      } catch (e) { fail(e); } finally { release(); }
    });
  });
  return server;
}
