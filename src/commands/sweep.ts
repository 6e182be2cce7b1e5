/**
 * driftlab sweep SPEC.json --out DIR [--queue URL] | sweep status DIR | sweep collect DIR,
 * and driftlab worker --queue URL: studies as arms, run here one after another or as BullMQ jobs
 * pulled by workers on any machine that sees DIR (src/sweep/).
 */
import type { CommandModule } from 'yargs';
import { collectSweep } from '../sweep/collect.js';
import { enqueueSweep, runWorker } from '../sweep/queue.js';
import { checkQueue, QUEUE_HELP, queueFrom, redacted } from '../sweep/queue-url.js';
import { runLocal } from '../sweep/run.js';
import { readSweepFile } from '../sweep/spec.js';
import { writeSweepRecord } from '../sweep/state.js';
import { sweepStatus } from '../sweep/status.js';
import { DriftlabError } from '../util/errors.js';
import { positiveInt } from './common.js';

const log = (l: string) => process.stderr.write(`${l}\n`);
const QUEUE_DESCRIBE = `BullMQ queue on Redis: ${QUEUE_HELP}; the password is never printed or written`;

const run: CommandModule<any, any> = {
  command: '$0 <spec>',
  describe: 'run a sweep file: every arm here, one after another (default), or one queued job per arm with --queue',
  builder: (y) => y
    .positional('spec', { type: 'string', describe: 'sweep file (JSON): runs of drift or an experiment with their options, and a grid over corrector, checkpoint, horizon, seed' })
    .option('out', { type: 'string', demandOption: true, describe: 'the sweep folder, the results root of every arm (a shared path when workers run elsewhere); an earlier folder of the same sweep continues it' })
    .option('queue', { type: 'string', describe: `${QUEUE_DESCRIBE}; 'env' reads DRIFTLAB_QUEUE. Without it the arms run here` }),
  handler: async (a) => {
    const s = readSweepFile(a.spec);
    const q = queueFrom(a.queue, false);
    if (q) {
      await checkQueue(q); // before anything is written
      await writeSweepRecord(a.out, s, a.spec, redacted(q));
      const r = await enqueueSweep(a.out, s, q);
      process.stdout.write(`queued ${r.added.length} of ${s.arms.length} arms on ${redacted(q)}${r.queued.length ? ` (${r.queued.length} already queued)` : ''}${r.finished.length ? ` (${r.finished.length} finished earlier)` : ''}\n`);
      process.stdout.write(`run workers with: driftlab worker --queue ${redacted(q)}   then: driftlab sweep status ${a.out}\n`);
      return;
    }
    await writeSweepRecord(a.out, s, a.spec, null);
    const r = await runLocal(a.out, s, log);
    process.stdout.write(`sweep ${s.name}: ${r.ran} arms ran, ${r.skipped} finished earlier, ${r.failed.length} failed; next: driftlab sweep collect ${a.out}\n`);
    if (r.failed.length) throw new DriftlabError(`${r.failed.length} of ${s.arms.length} arms failed: ${r.failed.join(', ')} (errors in driftlab sweep status ${a.out})`, 1);
  },
};

const status: CommandModule<any, any> = {
  command: 'status <dir>',
  describe: 'progress of every arm of a sweep, from the queue and the results on disk',
  builder: (y) => y
    .positional('dir', { type: 'string', describe: 'the sweep folder (--out of driftlab sweep)' })
    .option('queue', { type: 'string', describe: `${QUEUE_DESCRIBE}; default: DRIFTLAB_QUEUE, else the queue the sweep was sent to (when it has no password)` }),
  handler: async (a) => {
    process.stdout.write((await sweepStatus(a.dir, a.queue)).text);
  },
};

const collect: CommandModule<any, any> = {
  command: 'collect <dir>',
  describe: 'one merged summary over every finished arm: summary.json/.md, arms.csv, groups.csv (pooled over seeds), plots, report.html in DIR/collected/',
  builder: (y) => y.positional('dir', { type: 'string', describe: 'the sweep folder' }),
  handler: async (a) => {
    const r = await collectSweep(a.dir, log);
    process.stdout.write(r.table);
    for (const f of r.failed) process.stdout.write(`failed: ${f.arm}: ${f.error}\n`);
    process.stdout.write(`report: ${r.dir}/report.html\n`);
  },
};

export const sweepCommand: CommandModule<any, any> = {
  command: 'sweep',
  describe: 'sweeps of drift studies and experiments (locally, or as jobs on a Redis queue with driftlab worker); sweep status, sweep collect',
  builder: (y) => y.command(status).command(collect).command(run),
  handler: () => undefined,
};

export const workerCommand: CommandModule<any, any> = {
  command: 'worker',
  describe: 'pull sweep arms from a queue and run them (each in a child process, with the same code as the local commands)',
  builder: (y) => y
    .option('queue', { type: 'string', describe: `${QUEUE_DESCRIBE}; default: DRIFTLAB_QUEUE` })
    .option('concurrency', { type: 'number', default: 1, describe: 'arms run at once by this worker' })
    .option('lock-seconds', { type: 'number', default: 30, describe: 'job lock of a running arm (renewed while it runs); a dead worker\'s arm is retried this long after it died' })
    .option('max-stalled', { type: 'number', default: 3, describe: 'times an arm may lose its worker before it is marked failed' })
    .option('until-empty', { type: 'boolean', default: false, describe: 'stop once nothing is waiting, delayed or running (default: keep pulling until stopped)' }),
  handler: async (a) => {
    const q = queueFrom(a.queue, true);
    if (!q) throw new DriftlabError(`name the queue: --queue ${QUEUE_HELP}`);
    await runWorker(q, {
      concurrency: positiveInt('concurrency', a.concurrency), lockSeconds: positiveInt('lock-seconds', a.lockSeconds),
      maxStalled: positiveInt('max-stalled', a.maxStalled), untilEmpty: a.untilEmpty, log,
    });
  },
};
