/**
 * Issue #17's fault test: a 4-arm drift sweep (corrector x seed) run locally, and through a
 * BullMQ queue on a redis-server of this test's own with two `driftlab worker` processes, one of
 * which is SIGKILLed while its arm is half-written. The queue run must give the local run's bytes
 * (collected tables, per-frame metrics, generated frames); the collected numbers are checked
 * against the arms' own metrics.jsonl; a second run of the same sweep redoes nothing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../helpers/common.js';
import { TINY_DRIFT, tinyCheckpoint } from '../helpers/sweep.js';
import { cli, haveRedis, startRedis, until } from '../helpers/redis.js';
import { readSweepFile } from '../../src/sweep/spec.js';
import { armDir, armRecord, readAttempts } from '../../src/sweep/state.js';
import { sweepStatus } from '../../src/sweep/status.js';
import { collectSweep } from '../../src/sweep/collect.js';
import { runLocal } from '../../src/sweep/run.js';
import { enqueueSweep } from '../../src/sweep/queue.js';
import { parseQueueUrl } from '../../src/sweep/queue-url.js';

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

test('4 arms through the queue, one worker SIGKILLed mid-arm, give the local run\'s bytes', async () => {
  if (!haveRedis()) return;
  const t0 = performance.now();
  const dir = tempDir('driftlab-sweep-kill-');
  const redis = await startRedis();
  try {
    await tinyCheckpoint(dir);
    const spec = path.join(dir, 'tiny.json');
    fs.writeFileSync(spec, JSON.stringify({ name: 'tiny', grid: { seed: [1, 2] }, runs: [{ command: 'drift', name: 'd', options: TINY_DRIFT, grid: { corrector: ['none', 'renoise'] } }] }));
    const s = readSweepFile(spec);
    assert.equal(s.arms.map((a) => a.id), ['d.corrector-none.seed-1', 'd.corrector-none.seed-2', 'd.corrector-renoise.seed-1', 'd.corrector-renoise.seed-2']);
    const local = path.join(dir, 'local'), queued = path.join(dir, 'queued'), url = redis.url('kill');

    const localRun = cli(['sweep', spec, '--out', local], { cwd: dir }); // runs alongside the queue
    const enq = await cli(['sweep', spec, '--out', queued, '--queue', url], { cwd: dir }).done;
    assert.is(enq.code, 0, enq.err);
    assert.match(enq.out, /queued 4 of 4 arms on redis:\/\/127\.0\.0\.1:\d+\/kill/);

    const workerArgs = ['worker', '--queue', url, '--until-empty', '--lock-seconds', '3'];
    const w1 = cli(workerArgs, { cwd: dir }), w2 = cli(workerArgs, { cwd: dir });
    // w1's first arm: wait until its child has begun writing the study, then kill w1 outright
    const victim = await until(() => {
      for (const a of s.arms) {
        const at = readAttempts(queued, a.id).find((e) => e.pid === w1.child.pid);
        if (at && fs.existsSync(path.join(armDir(queued, a.id), 'study.json'))) return { arm: a, child: at.child as number };
      }
      return null;
    }, 'worker 1 to start writing an arm', 300_000, 10);
    w1.child.kill('SIGKILL');
    assert.is(armRecord(queued, victim.arm), null, 'the arm was killed before it finished');
    const r1 = await w1.done;
    assert.is(r1.signal, 'SIGKILL');
    await until(() => !alive(victim.child), "the killed worker's arm process to stop", 60_000);

    const r2 = await w2.done;
    assert.is(r2.code, 0, r2.err);
    const rl = await localRun.done;
    assert.is(rl.code, 0, rl.err);
    assert.match(rl.out, /sweep tiny: 4 arms ran, 0 finished earlier, 0 failed/);

    // the killed arm was retried by the other worker, which finished every arm
    const tries = readAttempts(queued, victim.arm.id);
    assert.ok(tries.length >= 2, `the killed arm ran again: ${JSON.stringify(tries)}\nworker 2:\n${r2.err.slice(-4000)}`);
    assert.is(tries[0].pid, w1.child.pid);
    assert.is(tries[tries.length - 1].pid, w2.child.pid);
    assert.match(r2.err, /stalled/, 'worker 2 saw the stalled job');
    for (const a of s.arms) assert.is(armRecord(queued, a)?.status, 'done', `${a.id}: ${armRecord(queued, a)?.error}\nworker 2:\n${r2.err.slice(-4000)}`);
    const st = await sweepStatus(queued, url);
    assert.equal(st.arms.map((a) => a.state), ['done', 'done', 'done', 'done']);
    assert.match(st.text, /4 arms: 4 done \(queue redis:\/\/127\.0\.0\.1:\d+\/kill\)/);

    // identical bytes: what each arm computed, and the collected tables
    for (const a of s.arms) {
      for (const f of ['metrics.jsonl', ...['none', 'renoise'].filter((c) => a.options.correctors === c).flatMap((c) => [`rollouts/${c}/frames.npy`, `rollouts/${c}/truth.npy`])]) {
        const x = fs.readFileSync(path.join(armDir(local, a.id), f)), y = fs.readFileSync(path.join(armDir(queued, a.id), f));
        assert.ok(x.equals(y), `${a.id}/${f} differs between the local and the queued run`);
      }
    }
    const cl = await collectSweep(local), cq = await collectSweep(queued);
    for (const f of ['summary.json', 'arms.csv', 'groups.csv', 'summary.md']) {
      assert.fixture(fs.readFileSync(path.join(cq.dir, f), 'utf8'), fs.readFileSync(path.join(cl.dir, f), 'utf8'), f);
    }
    assert.equal(cq.missing, []);
    assert.equal(cq.failed, []);

    // the collected numbers against the arms' own per-frame metrics (1 rollout: the mean is the value)
    const mseAt = (root: string, id: string, frame: number) => fs.readFileSync(path.join(armDir(root, id), 'metrics.jsonl'), 'utf8').trim().split('\n')
      .map((l) => JSON.parse(l)).find((r) => r.frame === frame && r.corrector === id.split('.')[1].replace('corrector-', '')).mse as number;
    const armsCsv = fs.readFileSync(path.join(cl.dir, 'arms.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
    const groupsCsv = fs.readFileSync(path.join(cl.dir, 'groups.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
    for (const c of ['none', 'renoise']) {
      const v = [1, 2].map((seed) => mseAt(local, `d.corrector-${c}.seed-${seed}`, 4));
      for (const [i, seed] of [1, 2].entries()) {
        const row = armsCsv.find((r) => r[0] === `d.corrector-${c}.seed-${seed}` && r[5] === '4' && r[6] === 'mse');
        assert.ok(row && Number(row[7]) === v[i], `arms.csv MSE@4 of ${c} seed ${seed}: ${row} vs ${v[i]}`);
      }
      const g = groupsCsv.find((r) => r[1] === c && r[4] === '4' && r[5] === 'mse');
      assert.ok(g, `groups.csv row of ${c} at frame 4`);
      assert.is(g![2], '1 2');
      assert.ok(Math.abs(Number(g![6]) - (v[0] + v[1]) / 2) < 1e-12, `pooled mean of ${c}: ${g![6]} vs ${(v[0] + v[1]) / 2}`);
      assert.is(Number(g![8]), Math.min(...v));
      assert.is(Number(g![9]), Math.max(...v));
    }

    // the same sweep again redoes nothing, locally or through the queue
    const again = await runLocal(local, s, () => undefined);
    assert.equal(again, { ran: 0, skipped: 4, failed: [] });
    const re = await enqueueSweep(queued, s, parseQueueUrl(url));
    assert.equal(re, { added: [], queued: [], finished: s.arms.map((a) => a.id) });
  } finally {
    await redis.stop();
  }
  console.log(`  (queue-kill: ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
});

test.run();
