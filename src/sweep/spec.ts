/**
 * Sweep files: a list of runs (a `drift` study or an experiment, with its options), each expanded
 * over a grid of corrector x checkpoint x horizon x seed into arms. An arm is one driftlab command
 * line, built here from an allow-list: the command must be one a sweep may name, every option
 * must be one that command declares (read from its own yargs builder, so the list cannot drift
 * from the CLI), with a value of the declared type. Nothing else ever runs: a worker rebuilds the
 * arm from the job's data through the same checks, never from a string it was handed.
 *
 *   {
 *     "name": "tiny",                                  optional, for the report
 *     "grid": {"seed": [1, 2]},                        optional, applies to every run
 *     "runs": [{"command": "drift", "name": "d",       name: optional, prefixes the arm ids
 *               "options": {"ckpt": "video/", "horizon": 6, "rollouts": 2},
 *               "grid": {"corrector": ["none", "renoise"]}}],
 *     "queue": {"attempts": 3, "backoffSeconds": 5}    optional, retries of a failing arm
 *   }
 *
 * Relative paths (ckpt, init-image, corrector-config "dir") are taken from the sweep file's folder.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import yargs, { type CommandModule } from 'yargs';
import { BACKEND_CHOICES } from '../backend.js';
import { driftCommand } from '../commands/drift.js';
import { EXPERIMENTS } from '../commands/experiment.js';
import { DriftlabError } from '../util/errors.js';

export type GridKey = 'corrector' | 'checkpoint' | 'horizon' | 'seed';
export const GRID_KEYS: GridKey[] = ['corrector', 'checkpoint', 'horizon', 'seed'];
export type OptionValue = string | number | boolean;

interface Allowed {
  module: CommandModule<any, any>;
  /** grid key -> the command's option */
  grid: Partial<Record<GridKey, string>>;
  /** the option that names the arm's output folder */
  outFlag: 'out' | 'root';
  /** how a retried arm continues: --resume (flag), --resume RUN-FOLDER (folder), or from scratch */
  resume: 'flag' | 'folder' | 'none';
}

/** The commands a sweep may name. */
export const ALLOWED: Record<string, Allowed> = {
  drift: { module: driftCommand, grid: { corrector: 'correctors', checkpoint: 'ckpt', horizon: 'horizon' }, outFlag: 'out', resume: 'flag' },
  'experiment drift-vs-horizon': { module: EXPERIMENTS['drift-vs-horizon'], grid: { corrector: 'correctors', checkpoint: 'ckpt', horizon: 'horizon' }, outFlag: 'root', resume: 'none' },
  'experiment guidance-sweep': { module: EXPERIMENTS['guidance-sweep'], grid: { checkpoint: 'ckpt' }, outFlag: 'root', resume: 'none' },
  'experiment schedule-ablation': { module: EXPERIMENTS['schedule-ablation'], grid: {}, outFlag: 'root', resume: 'folder' },
  'experiment context-noise-sweep': { module: EXPERIMENTS['context-noise-sweep'], grid: { horizon: 'horizon' }, outFlag: 'root', resume: 'folder' },
  'experiment image-to-video': { module: EXPERIMENTS['image-to-video'], grid: { horizon: 'horizon' }, outFlag: 'root', resume: 'folder' },
};
const PATH_OPTIONS = new Set(['ckpt', 'init-image']);
/** set by the sweep itself, never by a sweep file */
const RESERVED = new Set(['out', 'root', 'resume', 'help', 'version']);

export interface Arm {
  id: string;
  /** a key of ALLOWED */
  command: string;
  /** every option but the output folder and --resume, paths absolute; includes seed */
  options: Record<string, OptionValue>;
  /** the grid values that made this arm */
  grid: Partial<Record<GridKey, string | number>>;
  /** sha256 of command + options: an arm folder belongs to exactly one hash */
  hash: string;
}

export interface Sweep {
  name: string;
  arms: Arm[];
  attempts: number;
  backoffSeconds: number;
}

type OptType = { type: 'number' | 'boolean' | 'string' | 'any'; choices?: unknown[] };
const optionCache = new Map<string, Map<string, OptType>>();

/** The options a command declares in its yargs builder, plus the global --seed and --backend. */
function declaredOptions(command: string): Map<string, OptType> {
  let m = optionCache.get(command);
  if (m) return m;
  const y = yargs([]) as any;
  (ALLOWED[command].module.builder as (y: any) => unknown)(y);
  const o = y.getOptions();
  m = new Map();
  for (const k of Object.keys(o.key)) {
    if (RESERVED.has(k)) continue;
    const type = o.number.includes(k) ? 'number' : o.boolean.includes(k) ? 'boolean' : o.string.includes(k) ? 'string' : 'any';
    m.set(k, { type, choices: o.choices[k] });
  }
  m.set('seed', { type: 'number' });
  m.set('backend', { type: 'string', choices: [...BACKEND_CHOICES] });
  optionCache.set(command, m);
  return m;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const bad = (where: string, msg: string) => new DriftlabError(`sweep file: ${where}: ${msg}`);

/** One option value checked against its declared type; corrector-config may be given as an object. */
function checkValue(where: string, key: string, v: unknown, t: OptType, base: string): OptionValue {
  if (key === 'corrector-config' && isObject(v)) v = JSON.stringify(resolveConfigDirs(v, base));
  if (t.type === 'number' && (typeof v !== 'number' || !Number.isFinite(v))) throw bad(where, `option '${key}' must be a number, got ${JSON.stringify(v)}`);
  if (t.type === 'boolean' && typeof v !== 'boolean') throw bad(where, `option '${key}' must be true or false, got ${JSON.stringify(v)}`);
  if (t.type === 'string' && typeof v !== 'string') throw bad(where, `option '${key}' must be a string, got ${JSON.stringify(v)}`);
  if (t.type === 'any' && typeof v !== 'string' && !(typeof v === 'number' && Number.isFinite(v))) throw bad(where, `option '${key}' must be a number or string, got ${JSON.stringify(v)}`);
  if (typeof v === 'string' && /[\u0000-\u001f]/.test(v)) throw bad(where, `option '${key}' holds control characters`);
  if (t.choices && !t.choices.includes(v)) throw bad(where, `option '${key}' must be one of ${t.choices.join(', ')}, got ${JSON.stringify(v)}`);
  if (typeof v === 'string' && PATH_OPTIONS.has(key)) return path.resolve(base, v);
  return v as OptionValue;
}

function resolveConfigDirs(cfg: Record<string, unknown>, base: string): Record<string, unknown> {
  return Object.fromEntries(Object.entries(cfg).map(([k, c]) => [k, isObject(c) && typeof c.dir === 'string' ? { ...c, dir: path.resolve(base, c.dir) } : c]));
}

function checkGrid(where: string, g: unknown, allowed: Allowed): Partial<Record<GridKey, unknown[]>> {
  if (g === undefined) return {};
  if (!isObject(g)) throw bad(where, `grid must be an object like {"seed": [1, 2]}`);
  for (const [k, vs] of Object.entries(g)) {
    if (!GRID_KEYS.includes(k as GridKey)) throw bad(where, `unknown grid key '${k}'; use ${GRID_KEYS.join(', ')}`);
    if (k !== 'seed' && !allowed.grid[k as GridKey]) throw bad(where, `grid key '${k}' does not apply to this command`);
    if (!Array.isArray(vs) || !vs.length) throw bad(where, `grid.${k} must be a non-empty list`);
    if (new Set(vs.map((v) => JSON.stringify(v))).size !== vs.length) throw bad(where, `grid.${k} lists a value twice`);
    for (const v of vs) {
      const ok = k === 'seed' ? Number.isInteger(v) && v >= 0 : k === 'horizon' ? Number.isInteger(v) && v >= 1 : typeof v === 'string' && v.length > 0;
      if (!ok) throw bad(where, `grid.${k} holds ${JSON.stringify(v)}; ${k === 'seed' ? 'seeds are integers >= 0' : k === 'horizon' ? 'horizons are integers >= 1' : 'values are non-empty strings'}`);
    }
  }
  return g as Partial<Record<GridKey, unknown[]>>;
}

const slug = (v: unknown) => String(v).replace(/[^A-Za-z0-9_+-]+/g, '_').replace(/^_+|_+$/g, '') || 'x';

export function armHash(command: string, options: Record<string, OptionValue>): string {
  const sorted = Object.fromEntries(Object.keys(options).sort().map((k) => [k, options[k]]));
  return createHash('sha256').update(JSON.stringify({ command, options: sorted })).digest('hex').slice(0, 16);
}

/** Check a command name and its options against the allow-list; returns the options with absolute paths. */
export function checkArmOptions(where: string, command: unknown, options: unknown, base: string): Record<string, OptionValue> {
  if (typeof command !== 'string' || !Object.hasOwn(ALLOWED, command)) throw bad(where, `command ${JSON.stringify(command)} is not one a sweep may run; choose from ${Object.keys(ALLOWED).join(', ')}`);
  if (options !== undefined && !isObject(options)) throw bad(where, 'options must be an object of option name -> value');
  const declared = declaredOptions(command);
  const out: Record<string, OptionValue> = {};
  for (const [k, v] of Object.entries(options ?? {})) {
    if (RESERVED.has(k)) throw bad(where, `option '${k}' is set by the sweep (each arm gets its own folder and resumes by itself)`);
    const t = declared.get(k);
    if (!t) throw bad(where, `'${command}' has no option '${k}' (options are written as on the command line, e.g. "ref-frames")`);
    out[k] = checkValue(where, k, v, t, base);
  }
  return out;
}

/** Expand one run over its grid into arms (fixed order: corrector, checkpoint, horizon, seed). */
function expandRun(r: Record<string, unknown>, i: number, topGrid: unknown, base: string): Arm[] {
  const where = `runs[${i}]`;
  for (const k of Object.keys(r)) if (!['command', 'name', 'options', 'grid'].includes(k)) throw bad(where, `unknown key '${k}'; a run has command, name, options, grid`);
  const options = checkArmOptions(where, r.command, r.options, base);
  const command = r.command as string, allowed = ALLOWED[command];
  if (r.name !== undefined && (typeof r.name !== 'string' || !/^[A-Za-z0-9_-]{1,40}$/.test(r.name))) throw bad(where, 'name must be 1-40 letters, digits, _ or -');
  const runName = (r.name as string | undefined) ?? slug(command.replace(/^experiment /, ''));
  const grid = { ...checkGrid('grid', topGrid, allowed), ...checkGrid(`${where}.grid`, r.grid, allowed) };
  const declared = declaredOptions(command);
  let combos: { opts: Record<string, OptionValue>; grid: Arm['grid'] }[] = [{ opts: options, grid: {} }];
  for (const key of GRID_KEYS) {
    const values = grid[key];
    if (!values) continue;
    const opt = key === 'seed' ? 'seed' : allowed.grid[key]!;
    if (opt in options) throw bad(where, `'${opt}' is set both in options and by grid.${key}; keep one`);
    combos = combos.flatMap((c) => values.map((v) => ({ opts: { ...c.opts, [opt]: checkValue(`${where}.grid`, opt, v, declared.get(opt)!, base) }, grid: { ...c.grid, [key]: v as string | number } })));
  }
  return combos.map(({ opts, grid: g }) => {
    const opt = { seed: 0, ...opts };
    const id = [runName, ...GRID_KEYS.filter((k) => g[k] !== undefined).map((k) => `${k}-${slug(k === 'checkpoint' ? path.basename(String(g[k])) : g[k])}`)].join('.');
    return { id, command, options: opt, grid: g, hash: armHash(command, opt) };
  });
}

/** Parse and check a sweep file; every problem is one DriftlabError line naming where it is. */
export function parseSweep(text: string, file: string): Sweep {
  let j: unknown;
  try { j = JSON.parse(text); } catch (e) { throw new DriftlabError(`sweep file ${file} is not valid JSON: ${String((e as Error).message).split('\n')[0]}`); }
  if (!isObject(j)) throw new DriftlabError(`sweep file ${file} must hold a JSON object with "runs": [...]`);
  for (const k of Object.keys(j)) if (!['format', 'name', 'grid', 'runs', 'queue'].includes(k)) throw bad(file, `unknown key '${k}'; a sweep has name, grid, runs, queue`);
  if (!Array.isArray(j.runs) || !j.runs.length) throw bad(file, '"runs" must be a non-empty list of {"command": ..., "options": {...}}');
  const base = path.dirname(path.resolve(file));
  const arms = j.runs.flatMap((r, i) => {
    if (!isObject(r)) throw bad(`runs[${i}]`, 'each run is an object {"command": ..., "options": {...}}');
    return expandRun(r, i, j.grid, base);
  });
  const ids = new Map<string, number>();
  for (const a of arms) ids.set(a.id, (ids.get(a.id) ?? 0) + 1);
  const dup = [...ids].find(([, n]) => n > 1);
  if (dup) throw bad(file, `two arms would share the id '${dup[0]}'; give the runs distinct "name"s`);
  const q = j.queue === undefined ? {} : j.queue;
  if (!isObject(q)) throw bad(file, '"queue" must be an object like {"attempts": 3, "backoffSeconds": 5}');
  const attempts = q.attempts ?? 3, backoffSeconds = q.backoffSeconds ?? 5;
  if (!Number.isInteger(attempts) || (attempts as number) < 1 || (attempts as number) > 100) throw bad(file, 'queue.attempts must be an integer in 1..100');
  if (typeof backoffSeconds !== 'number' || !(backoffSeconds >= 0)) throw bad(file, 'queue.backoffSeconds must be a number >= 0');
  const name = j.name === undefined ? path.basename(file).replace(/\.json$/i, '') : j.name;
  if (typeof name !== 'string') throw bad(file, '"name" must be a string');
  return { name, arms, attempts: attempts as number, backoffSeconds };
}

export function readSweepFile(file: string): Sweep {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) {
    throw new DriftlabError(`cannot read sweep file ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : String((e as Error).message).split('\n')[0]}`);
  }
  return parseSweep(text, file);
}

/**
 * The command line of an arm: argv for driftlab (no shell ever sees it). Options go as
 * --name=value so a value cannot be read as another flag. `resumeFolder` continues an
 * experiment's earlier run folder.
 */
export function armArgv(arm: Arm, outDir: string, resumeFolder?: string): string[] {
  const a = ALLOWED[arm.command];
  const argv = arm.command.split(' ');
  for (const [k, v] of Object.entries(arm.options)) argv.push(typeof v === 'boolean' ? (v ? `--${k}` : `--no-${k}`) : `--${k}=${v}`);
  argv.push(`--${a.outFlag}=${outDir}`);
  if (a.resume === 'flag') argv.push('--resume');
  if (a.resume === 'folder' && resumeFolder) argv.push(`--resume=${resumeFolder}`);
  return argv;
}
