/**
 * A sweep's folder, shared by every machine that runs its arms:
 *
 *   DIR/sweep.json              the arms (command, options, hash), retries, the queue (no password)
 *   DIR/arms/<id>/              each arm's own output folder (its --out, or --root for experiments)
 *   DIR/state/<id>.json         written once the arm finished (or failed for good): status, seconds, error
 *   DIR/state/<id>.attempts.jsonl  one line per attempt started (worker host:pid, child pid, time)
 *   DIR/collected/              sweep collect: merged tables, plots, report
 *
 * Everything but the attempts log is written atomically, so a reader sees a whole file or none.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isAtomicLeftover, writeFileAtomic } from '../io/atomic.js';
import { DriftlabError } from '../util/errors.js';
import { ALLOWED, type Arm, type Sweep } from './spec.js';

export const armDir = (root: string, id: string) => path.join(root, 'arms', id);
const statePath = (root: string, id: string) => path.join(root, 'state', `${id}.json`);
const attemptsPath = (root: string, id: string) => path.join(root, 'state', `${id}.attempts.jsonl`);

export interface ArmRecord { id: string; hash: string; status: 'done' | 'failed'; seconds?: number; error?: string; finished: string }

export interface SweepRecord {
  format: 'driftlab-sweep-1';
  name: string;
  spec: string;
  arms: Arm[];
  attempts: number;
  backoffSeconds: number;
  /** the queue URL without its password, or null for a local sweep */
  queue: string | null;
}

const readJson = (f: string): any => { try { return JSON.parse(fs.readFileSync(f, 'utf8')); } catch { return null; } };

/** The sweep of a folder (DriftlabError when there is none). */
export function readSweepRecord(root: string): SweepRecord {
  const r = readJson(path.join(root, 'sweep.json'));
  if (!r || r.format !== 'driftlab-sweep-1') throw new DriftlabError(`${root} holds no sweep (no sweep.json); run 'driftlab sweep SPEC.json --out ${root}' first`);
  return r;
}

/**
 * Record a sweep in its folder. Running the same sweep again is fine (finished arms are kept);
 * a folder whose arms ran with other options is refused, so no arm mixes two settings.
 */
export async function writeSweepRecord(root: string, s: Sweep, specFile: string, queue: string | null): Promise<void> {
  const old = readJson(path.join(root, 'sweep.json'));
  if (!old && fs.existsSync(root) && fs.readdirSync(root).some((f) => !isAtomicLeftover(f))) throw new DriftlabError(`${root} is not empty and holds no sweep; choose a new --out`);
  if (old) {
    const was = new Map<string, string>((old.arms ?? []).map((a: Arm) => [a.id, a.hash]));
    for (const a of s.arms) if (was.has(a.id) && was.get(a.id) !== a.hash) throw new DriftlabError(`arm '${a.id}' in ${root} ran with other options; choose a new --out (or remove ${armDir(root, a.id)})`);
  }
  fs.mkdirSync(path.join(root, 'state'), { recursive: true });
  fs.mkdirSync(path.join(root, 'arms'), { recursive: true });
  const rec: SweepRecord = { format: 'driftlab-sweep-1', name: s.name, spec: path.resolve(specFile), arms: s.arms, attempts: s.attempts, backoffSeconds: s.backoffSeconds, queue };
  await writeFileAtomic(path.join(root, 'sweep.json'), JSON.stringify(rec, null, 2) + '\n');
}

/** The finished record of an arm, if it finished with these very options. */
export function armRecord(root: string, arm: Pick<Arm, 'id' | 'hash'>): ArmRecord | null {
  const r = readJson(statePath(root, arm.id));
  return r && r.hash === arm.hash ? r : null;
}

export const isDone = (root: string, arm: Pick<Arm, 'id' | 'hash'>) => armRecord(root, arm)?.status === 'done';

export async function writeArmRecord(root: string, r: Omit<ArmRecord, 'finished'>): Promise<void> {
  fs.mkdirSync(path.join(root, 'state'), { recursive: true });
  await writeFileAtomic(statePath(root, r.id), JSON.stringify({ ...r, finished: new Date().toISOString() }) + '\n');
}

export async function clearArmRecord(root: string, id: string): Promise<void> {
  await fs.promises.rm(statePath(root, id), { force: true });
}

export function logAttempt(root: string, id: string, entry: Record<string, unknown>): void {
  fs.mkdirSync(path.join(root, 'state'), { recursive: true });
  fs.appendFileSync(attemptsPath(root, id), JSON.stringify({ ...entry, at: new Date().toISOString() }) + '\n');
}

export function readAttempts(root: string, id: string): Record<string, any>[] {
  try {
    return fs.readFileSync(attemptsPath(root, id), 'utf8').split('\n').filter(Boolean).flatMap((l) => { try { return [JSON.parse(l)]; } catch { return []; } });
  } catch { return []; }
}

/** An experiment arm's latest run folder (ARM/<experiment>/<run-id>/ with meta.json), to resume. */
export function experimentRunFolder(root: string, arm: Arm): string | undefined {
  if (ALLOWED[arm.command].resume !== 'folder') return undefined;
  const d = path.join(armDir(root, arm.id), arm.command.split(' ')[1]);
  if (!fs.existsSync(d)) return undefined;
  const runs = fs.readdirSync(d).filter((f) => fs.existsSync(path.join(d, f, 'meta.json'))).sort();
  return runs.length ? path.join(d, runs[runs.length - 1]) : undefined;
}

/** How far an unfinished arm got, from its files: "rollouts 7/12 frames", "metrics", or "". */
export function diskProgress(root: string, arm: Arm): string {
  const d = armDir(root, arm.id);
  if (arm.command !== 'drift') return fs.existsSync(d) && fs.readdirSync(d).length ? 'started' : '';
  const study = readJson(path.join(d, 'study.json'));
  if (!study) return '';
  if (study.finished) return 'outputs written';
  let written = 0, total = 0;
  const rd = path.join(d, 'rollouts');
  for (const c of fs.existsSync(rd) ? fs.readdirSync(rd) : []) {
    const st = readJson(path.join(rd, c, 'state.json')), run = readJson(path.join(rd, c, 'run.json'));
    if (st && run) { written += st.written; total += run.horizon + run.context; }
  }
  const want = (study.correctors?.length ?? 1) * (study.horizon + study.context);
  return written >= want ? 'metrics' : `rollouts ${written}/${Math.max(total, want)} frames`;
}
