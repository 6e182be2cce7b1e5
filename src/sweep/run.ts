/**
 * Running one arm: in this process (a local sweep) or in a child process (a queue worker), both
 * through the very command modules of the CLI with the arm's argv (spec.ts builds it from the
 * allow-list; no shell is involved anywhere). Both record the attempt and, at the end, the arm's
 * state file (state.ts), written atomically only after the command itself has finished.
 */
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { driftCommand } from '../commands/drift.js';
import { experimentCommand } from '../commands/experiment.js';
import { globalOptions } from '../commands/globals.js';
import { DriftlabError } from '../util/errors.js';
import { armArgv, type Arm, type Sweep } from './spec.js';
import { armDir, experimentRunFolder, isDone, logAttempt, writeArmRecord } from './state.js';

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

/** The arm's driftlab argv for its folder in `root` (experiments resume their latest run folder). */
export const argvFor = (root: string, arm: Arm) => armArgv(arm, armDir(root, arm.id), experimentRunFolder(root, arm));

/** Parse and run driftlab argv here, with the CLI's own command modules and global options. */
export async function runArgvInProcess(argv: string[]): Promise<void> {
  await globalOptions(yargs(argv))
    .command(driftCommand)
    .command(experimentCommand)
    .strict()
    .exitProcess(false)
    .fail((msg, err) => { throw err ?? new DriftlabError(msg); })
    .parseAsync();
}

export interface ChildRun {
  pid: number;
  done: Promise<void>;
  stop(): void;
}

/**
 * Run driftlab argv in a child process that exits with its parent (arm-child.ts). Rejects with
 * the child's own one-line error when it fails. The child's environment has no queue URL.
 */
export function runArgvInChild(argv: string[], log: (line: string) => void): ChildRun {
  const entry = fileURLToPath(new URL('./arm-child.js', import.meta.url));
  const env = { ...process.env };
  delete env.DRIFTLAB_QUEUE;
  const child = spawn(process.execPath, [entry, ...argv], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env, shell: false });
  let lastError = '';
  const lines = (s: NodeJS.ReadableStream, err: boolean) => {
    let buf = '';
    s.on('data', (d) => {
      buf += d;
      const parts = buf.split(/\r?\n|\r/);
      buf = parts.pop()!;
      for (const l of parts) {
        if (!l.trim()) continue;
        if (err && /^driftlab: (internal )?error: /.test(l)) lastError = l.replace(/^driftlab: (internal )?error: /, '');
        log(l);
      }
    });
  };
  lines(child.stdout!, false);
  lines(child.stderr!, true);
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (e) => reject(new Error(`cannot start the arm: ${firstLine(e)}`)));
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(lastError || (signal ? `the arm was stopped by ${signal}` : `the arm exited with code ${code}`)));
    });
  });
  return { pid: child.pid ?? -1, done, stop: () => { child.kill('SIGTERM'); } };
}

export const workerName = () => `${os.hostname()}:${process.pid}`;

/**
 * A local sweep: every arm not finished earlier, one after another, in this process. A failing
 * arm is recorded as failed (with its error) and the others still run.
 */
export async function runLocal(root: string, s: Sweep, log: (l: string) => void): Promise<{ ran: number; skipped: number; failed: string[] }> {
  let ran = 0, skipped = 0;
  const failed: string[] = [];
  for (const [i, arm] of s.arms.entries()) {
    if (isDone(root, arm)) { skipped++; log(`sweep: [${i + 1}/${s.arms.length}] ${arm.id}: finished earlier`); continue; }
    log(`sweep: [${i + 1}/${s.arms.length}] ${arm.id}`);
    logAttempt(root, arm.id, { worker: workerName(), mode: 'local' });
    const t0 = performance.now();
    try {
      await runArgvInProcess(argvFor(root, arm));
      await writeArmRecord(root, { id: arm.id, hash: arm.hash, status: 'done', seconds: (performance.now() - t0) / 1000 });
      ran++;
    } catch (e) {
      const error = firstLine(e);
      await writeArmRecord(root, { id: arm.id, hash: arm.hash, status: 'failed', error });
      failed.push(arm.id);
      log(`sweep: ${arm.id} failed: ${error}`);
    }
  }
  return { ran, skipped, failed };
}
