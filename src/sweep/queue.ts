/**
 * A sweep on a BullMQ queue: one job per arm (job id = sweep folder key + arm id, so enqueuing
 * the same sweep twice adds nothing twice), workers that run arms in child processes, and the
 * queue's view of each arm for `sweep status`.
 *
 * Faults, as BullMQ handles them: a worker renews the lock of its job while the arm runs (its
 * own event loop stays free: the arm computes in a child process); when a worker dies the lock
 * expires, another worker's stalled-job check puts the job back (up to --max-stalled times) and
 * the arm resumes from its own saved state (drift --resume, an experiment's --resume folder). An
 * arm that fails is retried with exponential backoff up to the sweep's attempts, then left failed
 * with its error; the other arms go on. A job that lost its worker more than --max-stalled times
 * is failed by BullMQ (the next worker to pull it fails it without running it) and that worker
 * writes the arm's failure record, so status and collect show it.
 *
 * Trust: a job carries only the sweep folder and the arm's id, command and options. A worker
 * runs it only if the folder's own sweep.json lists that arm with that hash, and rebuilds the
 * command line through the allow-list (spec.ts) first.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { Queue, Worker, type Job } from 'bullmq';
import { DriftlabError } from '../util/errors.js';
import { armHash, checkArmOptions, type Arm, type Sweep } from './spec.js';
import { checkQueue, connectionOptions, redacted, scrub, type QueueUrl } from './queue-url.js';
import { argvFor, runArgvInChild, workerName, type ChildRun } from './run.js';
import { armRecord, isDone, logAttempt, readSweepRecord, writeArmRecord } from './state.js';

export interface JobData { format: 'driftlab-sweep-job-1'; root: string; arm: { id: string; command: string; options: Arm['options']; hash: string } }

/** Job ids are unique per sweep folder and arm (BullMQ ids may not contain ':'). */
export const jobId = (root: string, armId: string) => `${createHash('sha256').update(path.resolve(root)).digest('hex').slice(0, 12)}.${armId}`;

const openQueue = (q: QueueUrl) => new Queue(q.name, { connection: connectionOptions(q) });

/** Enqueue every arm that is neither finished on disk nor already waiting or running. */
export async function enqueueSweep(root: string, s: Sweep, q: QueueUrl): Promise<{ added: string[]; queued: string[]; finished: string[] }> {
  await checkQueue(q);
  const queue = openQueue(q);
  const added: string[] = [], queued: string[] = [], finished: string[] = [];
  try {
    for (const arm of s.arms) {
      if (isDone(root, arm)) { finished.push(arm.id); continue; }
      const id = jobId(root, arm.id);
      const old = await queue.getJob(id);
      if (old) {
        const st = await old.getState();
        if (st !== 'failed' && st !== 'completed' && st !== 'unknown') { queued.push(arm.id); continue; }
        await old.remove(); // failed for good earlier, or completed but its results are gone: run it again
      }
      const data: JobData = { format: 'driftlab-sweep-job-1', root: path.resolve(root), arm: { id: arm.id, command: arm.command, options: arm.options, hash: arm.hash } };
      await queue.add('arm', data, {
        jobId: id, attempts: s.attempts, backoff: { type: 'exponential', delay: s.backoffSeconds * 1000 }, removeOnComplete: false, removeOnFail: false,
      });
      added.push(arm.id);
    }
  } finally {
    await queue.close();
  }
  return { added, queued, finished };
}

export interface QueueArmState { state: string; attempts: number; error?: string }

/** The queue's state of each arm of a sweep (arms without a job are absent). */
export async function queueStates(root: string, s: Pick<Sweep, 'arms'>, q: QueueUrl): Promise<Map<string, QueueArmState>> {
  await checkQueue(q);
  const queue = openQueue(q);
  const out = new Map<string, QueueArmState>();
  try {
    for (const arm of s.arms) {
      const job = await queue.getJob(jobId(root, arm.id));
      if (!job) continue;
      out.set(arm.id, { state: await job.getState(), attempts: job.attemptsMade, error: job.failedReason ? scrub(job.failedReason, q) : undefined });
    }
  } finally {
    await queue.close();
  }
  return out;
}

/** The arm a job names, checked against the sweep folder's own record and the allow-list. */
export function armOfJob(data: unknown): { root: string; arm: Arm } {
  const d = data as Partial<JobData>;
  if (d?.format !== 'driftlab-sweep-job-1' || typeof d.root !== 'string' || !path.isAbsolute(d.root) || typeof d.arm?.id !== 'string') throw new DriftlabError('not a driftlab sweep job');
  const rec = readSweepRecord(d.root);
  const listed = rec.arms.find((a) => a.id === d.arm!.id);
  if (!listed) throw new DriftlabError(`sweep ${d.root} lists no arm '${d.arm.id}'`);
  const options = checkArmOptions(`job ${d.arm.id}`, d.arm.command, d.arm.options, d.root);
  const hash = armHash(d.arm.command, options);
  if (hash !== listed.hash || hash !== d.arm.hash) throw new DriftlabError(`job ${d.arm.id} does not match the arm in ${d.root}/sweep.json`);
  return { root: d.root, arm: { ...listed, options } };
}

export interface WorkerOptions {
  concurrency: number;
  lockSeconds: number;
  maxStalled: number;
  untilEmpty: boolean;
  log: (l: string) => void;
}

/** Pull jobs until stopped (or, with untilEmpty, until nothing is waiting, delayed or running). */
export async function runWorker(q: QueueUrl, o: WorkerOptions): Promise<void> {
  await checkQueue(q);
  const running = new Set<ChildRun>();
  const log = (l: string) => o.log(scrub(l, q));
  const processor = async (job: Job) => {
    const { root, arm } = armOfJob(job.data);
    if (isDone(root, arm)) return { skipped: true };
    const attempt = job.attemptsStarted;
    const t0 = performance.now();
    const child = runArgvInChild(argvFor(root, arm), (l) => log(`[${arm.id}] ${l}`));
    running.add(child);
    logAttempt(root, arm.id, { worker: workerName(), pid: process.pid, child: child.pid, attempt, job: job.id });
    log(`worker: ${arm.id}: attempt ${attempt} started (child ${child.pid})`);
    try {
      await child.done;
    } catch (e) {
      const error = scrub((e as Error).message, q);
      if (job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) await writeArmRecord(root, { id: arm.id, hash: arm.hash, status: 'failed', error });
      throw new Error(error);
    } finally {
      running.delete(child);
    }
    const seconds = (performance.now() - t0) / 1000;
    await writeArmRecord(root, { id: arm.id, hash: arm.hash, status: 'done', seconds });
    return { seconds };
  };
  const worker = new Worker(q.name, processor, {
    connection: connectionOptions(q), concurrency: o.concurrency, autorun: false,
    lockDuration: o.lockSeconds * 1000, stalledInterval: o.lockSeconds * 1000, maxStalledCount: o.maxStalled,
  });
  worker.on('completed', (job) => log(`worker: ${job.data?.arm?.id} finished`));
  // A job that failed for good gets its arm's failure record here too: the processor writes it
  // for an arm that failed its last attempt, but a job that lost its worker more than
  // --max-stalled times is failed by BullMQ without ever reaching a processor.
  const records = new Set<Promise<void>>();
  worker.on('failed', (job, err) => {
    log(`worker: ${job?.data?.arm?.id} failed (attempt ${job?.attemptsMade}/${job?.opts.attempts ?? 1}): ${failureReason(err.message, o.maxStalled)}`);
    if (!job) return;
    const p = recordFinalFailure(job, failureReason(scrub(err.message, q), o.maxStalled)).catch((e) => log(`worker: cannot record the failure of job ${job.id}: ${(e as Error).message}`));
    records.add(p);
    void p.finally(() => records.delete(p));
  });
  worker.on('stalled', (id) => log(`worker: job ${id} stalled (its worker stopped); it goes back to the queue and resumes from its saved state`));
  worker.on('error', (e) => log(`worker: queue error: ${String(e?.message ?? e).split('\n')[0]}`));
  // a stopped worker behaves like a killed one: its job stalls and resumes elsewhere
  const stop = (sig: string) => {
    for (const c of running) c.stop();
    log(`worker: ${sig}; stopping (an unfinished arm is retried and resumes from its saved state)`);
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  log(`worker ${workerName()}: pulling sweep arms from ${redacted(q)}`);
  const run = worker.run();
  if (o.untilEmpty) {
    const queue = openQueue(q);
    try {
      for (;;) {
        await new Promise((r) => setTimeout(r, 1000));
        const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
        if (Object.values(c).every((n) => n === 0) && running.size === 0) break;
      }
    } finally {
      await queue.close();
    }
    log('worker: the queue is empty; stopping');
    await worker.close();
  }
  await run;
  await Promise.all(records);
}

/** BullMQ's reason for a job failed by its stalled check, in the sweep's words. */
export const STALLED_REASON = 'job stalled more than allowable limit';
export function failureReason(msg: string, maxStalled: number): string {
  return msg === STALLED_REASON ? `the arm lost its worker more than ${maxStalled} time${maxStalled === 1 ? '' : 's'} (killed or stopped mid-arm; BullMQ: ${msg}); not retried` : msg;
}

/** Write the failure record of a job's arm once BullMQ holds the job as failed (not when it is only retried). */
async function recordFinalFailure(job: Job, error: string): Promise<void> {
  let root: string, arm: Arm;
  try { ({ root, arm } = armOfJob(job.data)); } catch { return; } // not a job of a sweep this machine sees
  if ((await job.getState()) !== 'failed') return;
  if (armRecord(root, arm)?.status === 'failed') return; // the processor wrote it, with the arm's own error
  await writeArmRecord(root, { id: arm.id, hash: arm.hash, status: 'failed', error });
}
