/** Helpers shared by commands: argument checks and output folders. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DriftlabError } from '../util/errors.js';

export function positiveInt(name: string, v: unknown): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new DriftlabError(`--${name} must be a positive integer, got ${v}`);
  return n;
}

export function positiveNumber(name: string, v: unknown): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new DriftlabError(`--${name} must be a positive number, got ${v}`);
  return n;
}

export function nonNegative(name: string, v: unknown): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new DriftlabError(`--${name} must be a non-negative number, got ${v}`);
  return n;
}

/** A run id that sorts by time: 20261127-173205-s0 */
export function runId(seed: number): string {
  const d = new Date();
  const p = (x: number) => String(x).padStart(2, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}-s${seed}`;
}

/** Refuse to write over an existing file unless asked. */
export function checkWritable(file: string | undefined, overwrite: boolean): void {
  if (!file) return;
  if (fs.existsSync(file) && !overwrite) throw new DriftlabError(`${file} already exists; pass --overwrite or choose another path`);
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir)) throw new DriftlabError(`folder ${dir} does not exist; create it first`);
}

/**
 * Corrector settings given as JSON on the command line. By default an object of objects, one per
 * corrector: {"kalman": {"dir": "..."}, "renoise": {"t": 100}}. With `bare`, any object is taken
 * (a single corrector's own settings, {"t": 100}, are allowed where only one corrector runs).
 */
export function parseCorrectorConfig(s: string | undefined, flag = 'corrector-config', bare = false): Record<string, Record<string, unknown>> {
  if (!s) return {};
  let j: unknown;
  try { j = JSON.parse(s); } catch { throw new DriftlabError(`--${flag} is not valid JSON: ${s.slice(0, 60)}`); }
  const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(j)) throw new DriftlabError(`--${flag} must be a JSON object: {"NAME": {...}}${bare ? ' or the settings of a single corrector' : ''}`);
  if (!bare && Object.values(j as object).some((v) => !isObject(v))) {
    throw new DriftlabError(`--${flag} must be a JSON object of objects: {"kalman": {"dir": "..."}, "renoise": {"t": 100}}`);
  }
  return j as Record<string, Record<string, unknown>>;
}
