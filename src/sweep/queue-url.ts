/**
 * The queue of a distributed sweep: redis://[[USER]:PASSWORD@]HOST[:PORT]/NAME (rediss:// for
 * TLS). NAME is the BullMQ queue. The password is a secret: it is kept out of every message,
 * record and child environment (redacted() is the only form ever printed or written), and it may
 * come from the DRIFTLAB_QUEUE environment variable (`--queue env`) instead of the command line,
 * where `ps` shows it.
 */
import type { ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { DriftlabError } from '../util/errors.js';

export interface QueueUrl {
  host: string;
  port: number;
  name: string;
  username?: string;
  password?: string;
  tls: boolean;
}

export const QUEUE_HELP = 'redis://[:PASSWORD@]HOST:PORT/NAME (or set DRIFTLAB_QUEUE)';

export function parseQueueUrl(s: string): QueueUrl {
  let u: URL;
  try { u = new URL(s); } catch { throw new DriftlabError(`--queue must look like ${QUEUE_HELP}`); }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new DriftlabError(`--queue must be a redis:// or rediss:// URL: ${QUEUE_HELP}`);
  const name = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new DriftlabError(`--queue must end in /NAME, the queue's name (letters, digits, _ . -): ${QUEUE_HELP}`);
  const port = u.port ? Number(u.port) : 6379;
  if (!u.hostname) throw new DriftlabError(`--queue names no host: ${QUEUE_HELP}`);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''), port, name, tls: u.protocol === 'rediss:',
    username: u.username ? decodeURIComponent(u.username) : undefined, password: u.password ? decodeURIComponent(u.password) : undefined,
  };
}

/** The URL as it may be shown: the password replaced by ***. */
export function redacted(q: QueueUrl): string {
  const auth = q.password ? `${q.username ?? ''}:***@` : q.username ? `${q.username}@` : '';
  return `${q.tls ? 'rediss' : 'redis'}://${auth}${q.host.includes(':') ? `[${q.host}]` : q.host}:${q.port}/${q.name}`;
}

/** A message with every trace of the password removed (errors of a client may quote what they were given). */
export function scrub(msg: string, q: QueueUrl): string {
  if (!q.password) return msg;
  return msg.split(q.password).join('***').split(encodeURIComponent(q.password)).join('***');
}

/** ioredis options for BullMQ: commands wait for a reconnect instead of failing (what workers need). */
export function connectionOptions(q: QueueUrl): ConnectionOptions & { host: string } {
  return { host: q.host, port: q.port, username: q.username, password: q.password, tls: q.tls ? {} : undefined, maxRetriesPerRequest: null };
}

/** Connect once, without retries, so an unreachable or locked queue is one clear error line. */
export async function checkQueue(q: QueueUrl, timeoutMs = 5000): Promise<void> {
  const r = new Redis({ ...connectionOptions(q), lazyConnect: true, retryStrategy: () => null, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, enableOfflineQueue: false });
  let cause: unknown; // the socket's own error (ECONNREFUSED, ...); connect() only says the connection closed
  r.on('error', (e) => { cause ??= e; });
  try {
    await r.connect();
    await r.ping();
  } catch (e) {
    const m = scrub(String((cause as Error)?.message ?? (e as Error)?.message ?? e).split('\n')[0], q);
    const why = /ECONNREFUSED/.test(m) ? 'connection refused; is redis-server running there?'
      : /NOAUTH|WRONGPASS|invalid password|invalid username/i.test(m) ? 'the server refused the credentials; check the password in --queue or DRIFTLAB_QUEUE'
        : /ETIMEDOUT|timeout/i.test(m) ? `no answer within ${timeoutMs / 1000} s` : /ENOTFOUND|EAI_AGAIN/.test(m) ? 'host not found' : m;
    throw new DriftlabError(`cannot reach the queue ${redacted(q)}: ${why}`);
  } finally {
    r.disconnect();
  }
}

/**
 * The queue of --queue; `--queue env` (and, where `envFallback`, no --queue at all) reads
 * DRIFTLAB_QUEUE. Undefined when there is none.
 */
export function queueFrom(arg: unknown, envFallback: boolean): QueueUrl | undefined {
  const env = process.env.DRIFTLAB_QUEUE;
  if (arg === 'env' && !env) throw new DriftlabError('--queue env reads DRIFTLAB_QUEUE, which is not set');
  const s = arg === 'env' ? env : typeof arg === 'string' && arg ? arg : envFallback ? env : undefined;
  return s ? parseQueueUrl(s) : undefined;
}
