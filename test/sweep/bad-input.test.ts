/**
 * Sweep files that must be refused before anything runs: each problem is one DriftlabError line
 * naming where it is; through the CLI, one 'driftlab: error:' line, a non-zero exit, no sweep
 * folder and nothing on the queue (a redis-server of this test's own).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { tempDir, throwsDriftlab } from '../helpers/common.js';
import { cli, haveRedis, startRedis, type CliRun } from '../helpers/redis.js';
import { parseSweep } from '../../src/sweep/spec.js';

const ok = { command: 'drift', options: { ckpt: 'video', horizon: 4 } };
const sweep = (o: Record<string, unknown>) => JSON.stringify({ runs: [ok], ...o });
const run = (r: Record<string, unknown>) => JSON.stringify({ runs: [{ ...ok, ...r }] });

test('each malformed sweep file is one line naming the problem and where it is', () => {
  const cases: [string, RegExp][] = [
    ['{"runs": [', /^sweep file s\.json is not valid JSON: /],
    ['[1, 2]', /must hold a JSON object with "runs"/],
    [JSON.stringify({ runs: [] }), /"runs" must be a non-empty list/],
    [sweep({ rusn: 1 }), /unknown key 'rusn'/],
    [run({ command: 'sh -c "rm -rf ~"' }), /runs\[0\]: command "sh -c \\"rm -rf ~\\"" is not one a sweep may run; choose from drift, experiment /],
    [run({ command: 'train' }), /is not one a sweep may run/],
    [run({ options: { ckpt: 'video', horizn: 4 } }), /runs\[0\]: 'drift' has no option 'horizn'/],
    [run({ options: { ckpt: 'video', horizon: '4' } }), /option 'horizon' must be a number, got "4"/],
    [run({ options: { ckpt: 'video', mp4: 'no' } }), /option 'mp4' must be true or false/],
    [run({ options: { ckpt: 'video', sampler: 'euler' } }), /option 'sampler' must be one of ddpm, ddim/],
    [run({ options: { ckpt: 'video', out: '/tmp/x' } }), /option 'out' is set by the sweep/],
    [run({ options: { ckpt: 'video', correctors: 'none\nrm' } }), /control characters/],
    [run({ grid: { colour: ['a'] } }), /unknown grid key 'colour'/],
    [run({ grid: { seed: [1, 1] } }), /grid\.seed lists a value twice/],
    [run({ grid: { seed: [-1] } }), /seeds are integers >= 0/],
    [run({ grid: { horizon: [2] } }), /'horizon' is set both in options and by grid\.horizon/],
    [JSON.stringify({ runs: [{ command: 'experiment guidance-sweep', grid: { horizon: [2] } }] }), /grid key 'horizon' does not apply to this command/],
    [JSON.stringify({ runs: [ok, ok] }), /two arms would share the id 'drift'/],
    [sweep({ queue: { attempts: 0 } }), /queue\.attempts must be an integer in 1\.\.100/],
  ];
  for (const [text, re] of cases) throwsDriftlab(() => parseSweep(text, 's.json'), re, text);
});

/** The CLI's error contract: non-zero exit, one 'driftlab: error:' line matching re, nothing else on stderr. */
function oneErrorLine(r: CliRun, re: RegExp): void {
  assert.ok(r.code !== 0 && r.code !== null, `exit code ${r.code}`);
  const lines = r.err.trim().split('\n');
  assert.is(lines.length, 1, `stderr: ${r.err}`);
  assert.match(lines[0], /^driftlab: error: /);
  assert.match(lines[0], re);
  assert.is(r.out, '');
}

test('through the CLI: one error line, non-zero exit, no folder written, nothing queued', async () => {
  if (!haveRedis()) return;
  const dir = tempDir('driftlab-sweep-bad-');
  const redis = await startRedis();
  try {
    fs.writeFileSync(path.join(dir, 'broken.json'), '{"runs": [{"command": "drift",');
    fs.writeFileSync(path.join(dir, 'typo.json'), run({ options: { ckpt: 'video', 'ref-frame': 8 } }));
    const [local, queued] = await Promise.all([
      cli(['sweep', 'broken.json', '--out', 'a'], { cwd: dir }).done,
      cli(['sweep', 'typo.json', '--out', 'b', '--queue', redis.url('bad')], { cwd: dir }).done,
    ]);
    oneErrorLine(local, /sweep file broken\.json is not valid JSON/);
    oneErrorLine(queued, /sweep file: runs\[0\]: 'drift' has no option 'ref-frame' \(options are written as on the command line/);
    assert.not.ok(fs.existsSync(path.join(dir, 'a')), 'no sweep folder for a broken file');
    assert.not.ok(fs.existsSync(path.join(dir, 'b')), 'no sweep folder for a refused file');
    const r = new Redis({ host: '127.0.0.1', port: redis.port });
    try {
      assert.is(await r.dbsize(), 0, 'nothing written to the queue');
    } finally {
      r.disconnect();
    }
  } finally {
    await redis.stop();
  }
});

test.run();
