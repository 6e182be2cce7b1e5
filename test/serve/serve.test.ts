/** driftlab serve end to end on loopback: routes, validation, queue limit, SIGTERM, port in use. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodePng } from '../../src/plot/png.js';
import { decodeNpy } from '../../src/io/npy.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'driftlab-serve-'));
const ckpt = path.join(tmp, 'ck');
let child: ChildProcess;
let url = '';

function startServer(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const c = spawn(process.execPath, [CLI, 'serve', '--ckpt', ckpt, '--quiet', '--backend', 'wasm', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '', err = '';
    c.stdout!.on('data', (d) => { out += d; const m = out.match(/http:\/\/[\d.]+:\d+/); if (m) resolve({ child: c, url: m[0] }); });
    c.stderr!.on('data', (d) => { err += d; });
    c.once('exit', (code) => reject(new Error(`server exited ${code}: ${err}`)));
  });
}

const post = (body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${url}/generate`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

test.before(async () => {
  const r = spawnSync(process.execPath, [CLI, 'train', '--preset', 'mnist-tiny', '--steps', '2', '--out', ckpt, '--workers', '1'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  ({ child, url } = await startServer(['--port', '0', '--queue', '0', '--max-n', '16']));
});
test.after(() => { child?.kill('SIGKILL'); fs.rmSync(tmp, { recursive: true, force: true }); });

test('GET /healthz', async () => {
  const r = await fetch(`${url}/healthz`);
  assert.is(r.status, 200);
  assert.is((await r.json()).status, 'ok');
});

test('POST /generate returns a PNG grid, or .npy on Accept: application/octet-stream; same seed same bytes', async () => {
  const r = await post({ n: 3, steps: 2, seed: 5, label: 4 });
  assert.is(r.status, 200);
  assert.is(r.headers.get('content-type'), 'image/png');
  const png = decodePng(new Uint8Array(await r.arrayBuffer()));
  assert.ok(png.width > 28 * 3 && png.height >= 56);
  const a = await post({ n: 2, steps: 3, seed: 9 }, { accept: 'application/octet-stream' });
  const b = await post({ n: 2, steps: 3, seed: 9 }, { accept: 'application/octet-stream' });
  const ab = new Uint8Array(await a.arrayBuffer()), bb = new Uint8Array(await b.arrayBuffer());
  const arr = decodeNpy(ab);
  assert.equal(arr.shape, [2, 28, 28]);
  assert.ok(Buffer.from(ab).equals(Buffer.from(bb)));
  const d = arr.data as Float32Array;
  assert.ok(d.every((v) => v >= 0 && v <= 1));
});

test('validation errors are 4xx with a one-line JSON message', async () => {
  const cases: [unknown, number, RegExp][] = [
    ['{not json', 400, /not valid JSON/],
    [{ n: 0 }, 422, /n must be an integer in 1\.\.16/],
    [{ n: 17 }, 422, /n must be/],
    [{ steps: 5000 }, 422, /steps must be an integer in 1\.\.1000/],
    [{ sampler: 'euler' }, 422, /unknown sampler/],
    [{ label: 12 }, 422, /label must be/],
    [{ colour: 'red' }, 422, /unknown field/],
  ];
  for (const [body, status, re] of cases) {
    const r = await post(body);
    assert.is(r.status, status, JSON.stringify(body));
    assert.match((await r.json()).error, re);
  }
  assert.is((await fetch(`${url}/nope`)).status, 404);
  assert.is((await fetch(`${url}/generate`)).status, 405);
});

test('a full queue answers 503', async () => {
  // queue 0: while one request runs, a second is refused
  const slow = post({ n: 16, steps: 30, seed: 1 });
  await new Promise((r) => setTimeout(r, 150));
  const second = await post({ n: 1, steps: 1 });
  assert.is(second.status, 503);
  assert.match((await second.json()).error, /busy/);
  assert.is((await slow).status, 200);
});

test('port already in use: one line, non-zero exit', async () => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const port = (blocker.address() as net.AddressInfo).port;
  const r = spawnSync(process.execPath, [CLI, 'serve', '--ckpt', ckpt, '--port', String(port)], { encoding: 'utf8' });
  blocker.close();
  assert.ok(r.status !== 0);
  assert.match(r.stderr, /driftlab: error: port \d+ on 127\.0\.0\.1 is already in use/);
});

test('SIGTERM finishes the in-flight request and exits 0', async () => {
  const s = await startServer(['--port', '0']);
  const inflight = fetch(`${s.url}/generate`, { method: 'POST', body: JSON.stringify({ n: 8, steps: 20 }) });
  await new Promise((r) => setTimeout(r, 100));
  const exited = new Promise<number | null>((r) => s.child.once('exit', (c) => r(c)));
  s.child.kill('SIGTERM');
  const res = await inflight;
  assert.is(res.status, 200);
  assert.is(await exited, 0);
});

test.run();
