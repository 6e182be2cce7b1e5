/** Shared by the experiments: a run folder results/<name>/<run-id>/ with what ran and on what. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { writeFileAtomic } from '../src/io/atomic.js';
import { backendInfo } from '../src/backend.js';
import { DriftlabError } from '../src/util/errors.js';

export interface RunDir {
  dir: string;
  write(name: string, data: string | Uint8Array): Promise<void>;
}

function pkgVersion(name: string): string | null {
  try { return createRequire(import.meta.url)(`${name}/package.json`).version; } catch { return null; }
}

/**
 * A new run folder results/<name>/<run-id>/, or (resume) an existing one of the same experiment:
 * finished parts are reused and the resume is recorded in meta.json. `sameConfig` names settings
 * that must equal the earlier run's.
 */
export async function makeRunDir(root: string, name: string, seed: number, config: unknown, resume?: string, sameConfig: string[] = []): Promise<RunDir> {
  if (resume) {
    const metaPath = path.join(resume, 'meta.json');
    if (!fs.existsSync(metaPath)) throw new DriftlabError(`--resume ${resume}: no meta.json there; pass a results/${name}/<run-id>/ folder`);
    const meta = JSON.parse(fs.readFileSync(metaPath, 'utf8'));
    if (meta.experiment !== name) throw new DriftlabError(`--resume ${resume} is a ${meta.experiment} run, not ${name}`);
    if (meta.seed !== seed) throw new DriftlabError(`--resume ${resume} ran with --seed ${meta.seed}; pass the same seed`);
    // settings whose change would mix incomparable parts into one table
    for (const k of sameConfig) {
      const was = JSON.stringify(meta.config?.[k]);
      const now = JSON.stringify((config as Record<string, unknown>)[k]);
      if (was !== now) throw new DriftlabError(`--resume ${resume} ran with ${k} = ${was}, not ${now}; pass the same setting or start a new run`);
    }
    meta.resumed = [...(meta.resumed ?? []), { at: new Date().toISOString(), command: process.argv.slice(1).join(' ') }];
    await writeFileAtomic(metaPath, JSON.stringify(meta, null, 2) + '\n');
    return { dir: resume, write: (n, data) => writeFileAtomic(path.join(resume, n), data) };
  }
  const d = new Date();
  const p = (x: number) => String(x).padStart(2, '0');
  const id = `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}-s${seed}`;
  const dir = path.join(root, name, id);
  if (fs.existsSync(dir)) throw new Error(`${dir} exists; wait a second and rerun`);
  fs.mkdirSync(dir, { recursive: true });
  const meta = {
    experiment: name, seed, config, started: d.toISOString(), command: process.argv.slice(1).join(' '),
    versions: {
      driftlab: pkgVersion('../package.json') ?? JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version,
      node: process.version, tfjs: tf.version.tfjs, onnxruntime: pkgVersion('onnxruntime-node'), backend: backendInfo()?.line ?? null,
    },
  };
  await writeFileAtomic(path.join(dir, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
  return { dir, write: (n, data) => writeFileAtomic(path.join(dir, n), data) };
}

/** A markdown table from rows of equal keys. */
export function markdownTable(rows: Record<string, string | number>[]): string {
  if (!rows.length) return '';
  const keys = Object.keys(rows[0]);
  const fmt = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : v);
  return [`| ${keys.join(' | ')} |`, `|${keys.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${keys.map((k) => fmt(r[k])).join(' | ')} |`)].join('\n') + '\n';
}
