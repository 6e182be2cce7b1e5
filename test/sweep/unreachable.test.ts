/**
 * A queue that cannot be used is one error line naming why (nothing listening; the server refused
 * the password), with a non-zero exit, before anything is written, and without the password.
 * The live server is this test's own redis-server, started with a password.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../helpers/common.js';
import { cli, freePort, haveRedis, startRedis, type CliRun } from '../helpers/redis.js';
import { TINY_DRIFT } from '../helpers/sweep.js';

function oneErrorLine(r: CliRun, re: RegExp, secret: string): void {
  assert.ok(r.code !== 0 && r.code !== null, `exit code ${r.code}`);
  const lines = r.err.trim().split('\n');
  assert.is(lines.length, 1, `stderr: ${r.err}`);
  assert.match(lines[0], /^driftlab: error: /);
  assert.match(lines[0], re);
  assert.not.ok(r.err.includes(secret) || r.out.includes(secret), 'the password is never printed');
}

test('unreachable or refusing queues: one line with the cause, non-zero exit, nothing written, no password', async () => {
  if (!haveRedis()) return;
  const dir = tempDir('driftlab-sweep-unreach-');
  const redis = await startRedis(['--requirepass', 'pw-live-7f3a']);
  try {
    const dead = await freePort(); // nothing listens there
    fs.writeFileSync(path.join(dir, 'tiny.json'), JSON.stringify({ runs: [{ command: 'drift', options: { ...TINY_DRIFT, correctors: 'none' } }] }));
    const [refused, worker, envQueue, wrongPw] = await Promise.all([
      cli(['sweep', 'tiny.json', '--out', 'a', '--queue', `redis://:pw-dead-91c2@127.0.0.1:${dead}/q`], { cwd: dir }).done,
      cli(['worker', '--queue', `redis://127.0.0.1:${dead}/q`], { cwd: dir }).done,
      cli(['worker', '--queue', 'env'], { cwd: dir, env: { DRIFTLAB_QUEUE: '' } }).done,
      cli(['sweep', 'tiny.json', '--out', 'b', '--queue', redis.url('q', 'pw-wrong-04be')], { cwd: dir }).done,
    ]);
    const at = (p: number) => `redis://(:\\*\\*\\*@)?127\\.0\\.0\\.1:${p}/q`;
    oneErrorLine(refused, new RegExp(`cannot reach the queue ${at(dead)}: connection refused; is redis-server running there\\?$`), 'pw-dead-91c2');
    assert.match(refused.err, /redis:\/\/:\*\*\*@127/, 'the URL is shown with the password masked');
    oneErrorLine(worker, new RegExp(`cannot reach the queue ${at(dead)}: connection refused`), 'pw-dead-91c2');
    oneErrorLine(envQueue, /--queue env reads DRIFTLAB_QUEUE, which is not set/, 'pw-');
    oneErrorLine(wrongPw, new RegExp(`cannot reach the queue ${at(redis.port)}: the server refused the credentials; check the password`), 'pw-wrong-04be');
    assert.not.ok(fs.existsSync(path.join(dir, 'a')), 'nothing written for an unreachable queue');
    assert.not.ok(fs.existsSync(path.join(dir, 'b')), 'nothing written for a refused password');
  } finally {
    await redis.stop();
  }
});

test.run();
