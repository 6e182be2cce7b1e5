/**
 * A job that loses its worker too often is failed, recorded and shown, and the rest go on. Two
 * workers that take arm A and vanish (BullMQ workers of this test that fetch the job by hand and
 * never renew its lock, which to the queue is a killed worker) make it stall twice; the real
 * `driftlab worker --max-stalled 1` then finds the second stall, fails A without running it,
 * writes A's failure record and runs arm B. redis-server is this test's own.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Queue, Worker } from 'bullmq';
import { tempDir } from '../helpers/common.js';
import { cli, haveRedis, startRedis, until } from '../helpers/redis.js';
import { TINY_DRIFT, tinyCheckpoint } from '../helpers/sweep.js';
import { readSweepFile } from '../../src/sweep/spec.js';
import { armDir, armRecord, readAttempts, writeSweepRecord } from '../../src/sweep/state.js';
import { enqueueSweep, jobId, STALLED_REASON } from '../../src/sweep/queue.js';
import { connectionOptions, parseQueueUrl, redacted } from '../../src/sweep/queue-url.js';
import { sweepStatus } from '../../src/sweep/status.js';
import { collectSweep } from '../../src/sweep/collect.js';

test('an arm that stalls more than --max-stalled gets a failure record; status and collect show it', async () => {
  if (!haveRedis()) return;
  const t0 = performance.now();
  const dir = tempDir('driftlab-sweep-stall-');
  const redis = await startRedis();
  try {
    await tinyCheckpoint(dir);
    const spec = path.join(dir, 'stall.json');
    fs.writeFileSync(spec, JSON.stringify({ name: 'stall', grid: { seed: [1, 2] }, runs: [{ command: 'drift', name: 'd', options: { ...TINY_DRIFT, correctors: 'none' } }] }));
    const url = redis.url('stall'), q = parseQueueUrl(url), root = path.join(dir, 'sweep');
    const s = readSweepFile(spec);
    const [A, B] = s.arms;
    await writeSweepRecord(root, s, spec, redacted(q));
    assert.equal((await enqueueSweep(root, s, q)).added, [A.id, B.id]);

    // a worker that takes a job and is never heard of again: its lock lapses, nothing renews it
    const ghost = new Worker(q.name, null, { connection: connectionOptions(q), autorun: false, lockDuration: 300, stalledInterval: 200, maxStalledCount: 1 });
    try {
      const first = await ghost.getNextJob('ghost-1');
      assert.is(first?.id, jobId(root, A.id), 'the first job is arm A');
      // stall 1, found by the ghost's own check (a job is marked on one pass, moved back on a later one)
      // (the check itself, run on demand: Worker.moveStalledJobsToWait is private in BullMQ's types)
      const check = () => (ghost as unknown as { moveStalledJobsToWait(): Promise<void> }).moveStalledJobsToWait();
      await until(async () => { await check(); return (await first!.getState()) === 'waiting'; }, 'the first stall', 30_000, 250);
      const second = await ghost.getNextJob('ghost-2');
      assert.is(second?.id, jobId(root, A.id), 'A, back in the queue, is taken again (and lost again)');
    } finally {
      await ghost.close(true);
    }

    // stall 2 is the real worker's to find: more than --max-stalled 1, so A fails unrun; B runs
    const w = await cli(['worker', '--queue', url, '--max-stalled', '1', '--lock-seconds', '3', '--until-empty'], { cwd: dir }).done;
    assert.is(w.code, 0, w.err);
    assert.match(w.err, new RegExp(`${A.id.replace(/\./g, '\\.')} failed .*the arm lost its worker more than 1 time`));
    const failedA = armRecord(root, A);
    assert.is(failedA?.status, 'failed');
    assert.match(failedA!.error!, /^the arm lost its worker more than 1 time \(killed or stopped mid-arm; BullMQ: job stalled more than allowable limit\); not retried$/);
    assert.is(readAttempts(root, A.id).length, 0, 'the worker did not run A again');
    assert.not.ok(fs.existsSync(armDir(root, A.id)) && fs.readdirSync(armDir(root, A.id)).length > 0, 'A wrote nothing');
    assert.is(armRecord(root, B)?.status, 'done', 'the other arm still ran');
    // the queue's own view agrees
    const queue = new Queue(q.name, { connection: connectionOptions(q) });
    try {
      const job = await queue.getJob(jobId(root, A.id));
      assert.is(await job!.getState(), 'failed');
      assert.is(job!.failedReason, STALLED_REASON);
    } finally {
      await queue.close();
    }

    const st = await sweepStatus(root, url);
    assert.equal(st.arms.map((a) => [a.id, a.state]), [[A.id, 'failed'], [B.id, 'done']]);
    assert.match(st.text, new RegExp(`${A.id.replace(/\./g, '\\.')} +failed +attempts 0 +the arm lost its worker more than 1 time`));
    assert.match(st.text, /\n2 arms: 1 failed, 1 done \(queue /);

    const c = await collectSweep(root);
    assert.equal(c.failed, [{ arm: A.id, error: failedA!.error }]);
    assert.equal(c.missing, []);
    const summary = JSON.parse(fs.readFileSync(path.join(c.dir, 'summary.json'), 'utf8'));
    assert.equal(summary.collected, [B.id]);
    assert.equal(summary.failed, c.failed);
    assert.ok(fs.readFileSync(path.join(c.dir, 'summary.md'), 'utf8').includes(`- ${A.id}: the arm lost its worker more than 1 time`), 'summary.md lists the failed arm');
    assert.ok(fs.readFileSync(path.join(c.dir, 'report.html'), 'utf8').includes(`Failed, so not collected: ${A.id}: the arm lost its worker`), 'the report says so');
  } finally {
    await redis.stop();
  }
  console.log(`  (stalled: ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
});

test.run();
