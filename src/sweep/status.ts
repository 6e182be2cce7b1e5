/**
 * `driftlab sweep status DIR`: one line per arm, from the results on disk (state files, attempts
 * log, the arm's own progress files) and, when the queue is known, BullMQ's state of its job.
 * A done record is final whatever the queue says; a job that is waiting or running again wins
 * over an earlier failure.
 */
import { queueStates, type QueueArmState } from './queue.js';
import { parseQueueUrl, queueFrom, redacted, type QueueUrl } from './queue-url.js';
import { armRecord, diskProgress, readAttempts, readSweepRecord } from './state.js';

export interface ArmStatus { id: string; state: string; attempts: number; note: string }

/** The queue to ask for a sweep: --queue, DRIFTLAB_QUEUE, or the sweep's own record when it needs no password. */
export function statusQueue(arg: unknown, recorded: string | null): QueueUrl | undefined {
  const q = queueFrom(arg, true);
  if (q) return q;
  return recorded && !recorded.includes('***') ? parseQueueUrl(recorded) : undefined;
}

export async function sweepStatus(dir: string, queueArg?: unknown): Promise<{ arms: ArmStatus[]; text: string }> {
  const rec = readSweepRecord(dir);
  const q = statusQueue(queueArg, rec.queue);
  const states: Map<string, QueueArmState> = q ? await queueStates(dir, rec, q) : new Map();
  const counts: Record<string, number> = {};
  const arms = rec.arms.map((arm): ArmStatus => {
    const disk = armRecord(dir, arm), qs = states.get(arm.id), tries = readAttempts(dir, arm.id).length;
    const live = qs && ['active', 'waiting', 'delayed', 'prioritized'].includes(qs.state);
    // a live job wins over an earlier failure: the arm was queued again and runs now
    const state = disk?.status === 'done' ? 'done' : live ? qs!.state : disk?.status === 'failed' || qs?.state === 'failed' ? 'failed' : tries ? 'stopped' : 'not started';
    counts[state] = (counts[state] ?? 0) + 1;
    const note = state === 'done' ? `${disk!.seconds?.toFixed(1) ?? '?'} s` : state === 'failed' ? (disk?.error ?? qs?.error ?? '') : diskProgress(dir, arm);
    return { id: arm.id, state, attempts: tries, note };
  });
  const lines = arms.map((a) => `${a.id.padEnd(36)} ${a.state.padEnd(11)} attempts ${String(a.attempts).padEnd(3)} ${a.note}`.trimEnd());
  const where = q ? ` (queue ${redacted(q)})` : rec.queue ? ' (disk only: pass --queue or DRIFTLAB_QUEUE with the password for the queue\'s view)' : '';
  return { arms, text: `${lines.join('\n')}\n${rec.arms.length} arms: ${Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(', ')}${where}\n` };
}
