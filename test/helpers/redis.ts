/**
 * A redis-server of a test's own on a free loopback port (no persistence), and the driftlab CLI
 * as a child process. The sweep tests need Debian's redis-server (.ci/run installs it): without
 * one they fail in CI and say so; elsewhere they print that they were skipped.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { tempDir } from './common.js';

export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.js');

/** True when redis-server can run here; otherwise fails the test in CI, or logs the skip. */
export function haveRedis(): boolean {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (!r.error && r.status === 0) return true;
  const why = `redis-server is not on PATH (${r.error ? (r.error as NodeJS.ErrnoException).code : `exit ${r.status}`}); the sweep tests need it: apt-get install redis-server (.ci/run does)`;
  if (process.env.CI) assert.unreachable(why);
  console.log(`  (skipped: ${why})`);
  return false;
}

/** A TCP port nothing listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(0, '127.0.0.1', resolve); });
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export interface RedisServer { port: number; url(name: string, password?: string): string; stop(): Promise<void> }

const started = new Set<ChildProcess>();
process.on('exit', () => { for (const c of started) c.kill('SIGKILL'); });

/** Start redis-server on a free loopback port and wait until it accepts connections. */
export async function startRedis(extra: string[] = []): Promise<RedisServer> {
  const port = await freePort();
  const dir = tempDir('driftlab-redis-');
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server on port ${port} not ready after 30 s: ${out.slice(-500)}`)), 30_000);
    const onData = (d: Buffer) => {
      out += d;
      if (/Ready to accept connections/.test(out)) { clearTimeout(timer); resolve(); }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (e) => { clearTimeout(timer); reject(new Error(`cannot start redis-server: ${e.message}`)); });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`redis-server exited (${code}) before it was ready: ${out.slice(-500)}`)); });
  });
  child.removeAllListeners('exit');
  return {
    port,
    url: (name, password) => `redis://${password ? `:${password}@` : ''}127.0.0.1:${port}/${name}`,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      started.delete(child);
    },
  };
}

export interface CliRun { code: number | null; signal: NodeJS.Signals | null; out: string; err: string }
export interface CliProcess { child: ChildProcess; done: Promise<CliRun> }

/** The driftlab CLI in a child process (its output collected). */
export function cli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { err += d; });
  const done = new Promise<CliRun>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, out, err })));
  return { child, done };
}

/** Poll until fn() returns a truthy value (or fail after timeoutMs with `what`). */
export async function until<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 240_000, everyMs = 25): Promise<NonNullable<T>> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Every file under dir, relative, sorted. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p); else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}
