/**
 * Latency of `driftlab serve` under a bounded, loopback-only load.
 *   node dist/bench/load.js [--ckpt DIR] [--requests 50] [--concurrency 1] [--n 1] [--steps 10]
 * Starts the server on 127.0.0.1 (ephemeral port), sends the requests, prints p50/p95/max and
 * throughput, then stops the server with SIGTERM.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const argv = process.argv;
const opt = (n: string, d: string) => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1] : d);
const requests = Math.min(Number(opt('requests', '50')), 1000);
const concurrency = Math.min(Number(opt('concurrency', '1')), 16);
const body = JSON.stringify({ n: Number(opt('n', '1')), steps: Number(opt('steps', '10')), sampler: 'ddim', guidance: Number(opt('guidance', '2')), label: 3, seed: 1 });
const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.js');
const extra = argv.includes('--ckpt') ? ['--ckpt', opt('ckpt', '')] : [];
const engineArgs = argv.includes('--engine') ? ['--engine', opt('engine', 'auto')] : [];
const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--quiet', ...extra, ...engineArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
const url: string = await new Promise((resolve, reject) => {
  let out = '';
  child.stdout!.on('data', (d) => { out += d; const m = out.match(/http:\/\/[\d.]+:\d+/); if (m) resolve(m[0]); });
  child.once('exit', (c) => reject(new Error(`server exited with ${c}`)));
});
const lat: number[] = [];
let next = 0, failed = 0;
const t0 = performance.now();
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (next < requests) {
    next++;
    const s = performance.now();
    const r = await fetch(`${url}/generate`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    await r.arrayBuffer();
    if (r.status !== 200) failed++;
    lat.push(performance.now() - s);
  }
}));
const wall = (performance.now() - t0) / 1000;
child.kill('SIGTERM');
lat.sort((a, b) => a - b);
const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
console.log(JSON.stringify({
  what: 'serve latency', body: JSON.parse(body), requests, concurrency, failed, p50ms: q(0.5), p95ms: q(0.95), maxms: lat.at(-1), reqPerSec: requests / wall,
  command: `node dist/bench/load.js ${argv.slice(2).join(' ')}`.trim(),
}));
