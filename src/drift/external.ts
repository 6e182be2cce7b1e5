/**
 * Correctors from a user's own module: `--corrector ./my-corrector.mjs` (a file) or
 * `--corrector my-corrector-package` (an installed package). The module exports
 *
 *   export const name = 'my-corrector';             // how configs, chains and reports call it
 *   export const describe = 'one line';              // optional
 *   export default function (ctx, config) { ... }    // the factory: returns a DriftCorrector
 *
 * and is registered through the same registerCorrector as the built-ins, so it is configured,
 * chained, fitted, saved, loaded, resumed and measured alike; its file and sha256 go into every
 * run.json. Loading the same file again gives the same name (no second registration).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DriftlabError } from '../util/errors.js';
import { correctorInfo, registerCorrector } from './registry.js';
import './correctors/index.js';

const loaded = new Map<string, string>(); // resolved file -> registered name

/** A spec names a module (not a registered corrector) when it looks like a path or is no known name. */
export function isModuleSpec(spec: string): boolean {
  return /^(\.{1,2}\/|\/)|\.(m?js|cjs)$/.test(spec) || (!correctorInfo(spec) && /^(@[\w.-]+\/)?[\w.-]+$/.test(spec) && fs.existsSync(packageDir(spec) ?? ''));
}

/** node_modules/<spec> found from the working folder upwards, or null. */
function packageDir(spec: string): string | null {
  for (let d = process.cwd(); ; d = path.dirname(d)) {
    const p = path.join(d, 'node_modules', spec);
    if (fs.existsSync(path.join(p, 'package.json'))) return p;
    if (path.dirname(d) === d) return null;
  }
}

/** The entry file of a module spec: a path (from the working folder) or an installed package. */
function resolveModule(spec: string): string {
  if (/^(\.{1,2}\/|\/)|\.(m?js|cjs)$/.test(spec)) {
    const file = path.resolve(spec);
    if (!fs.existsSync(file)) throw new DriftlabError(`corrector module ${spec} not found (looked for ${file}); give a path to a .mjs/.js file or an installed package name`);
    return file;
  }
  try {
    return createRequire(path.join(process.cwd(), 'noop.js')).resolve(spec);
  } catch { /* an ESM-only package: read its package.json */ }
  const dir = packageDir(spec);
  if (!dir) throw new DriftlabError(`corrector module '${spec}' is neither a built-in corrector nor an installed package; give a file path (./${spec}.mjs) or npm install it`);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const e = pkg.exports?.['.'] ?? pkg.exports;
  const entry = typeof e === 'string' ? e : e?.import ?? e?.default ?? pkg.main ?? 'index.js';
  return path.join(dir, typeof entry === 'string' ? entry : entry.default);
}

/** Load (once) and register the corrector module `spec`; returns the name it registered. */
export async function loadCorrectorModule(spec: string): Promise<string> {
  const file = resolveModule(spec);
  const known = loaded.get(file);
  if (known) return known;
  const sha256 = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  let mod: any;
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (e) {
    const msg = e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e);
    throw new DriftlabError(`corrector module ${spec} failed to load: ${msg}`);
  }
  const make = typeof mod.default === 'function' ? mod.default : mod.default?.create;
  const name = mod.name ?? mod.default?.name;
  if (typeof make !== 'function' || typeof name !== 'string' || typeof mod.default === 'function' && mod.name === undefined) {
    throw new DriftlabError(`corrector module ${spec} must export \`name\` (a string) and a default factory function (ctx, config) => corrector; see docs/CORRECTORS.md`);
  }
  if (correctorInfo(name)) throw new DriftlabError(`corrector module ${spec} is called '${name}', a name already taken${correctorInfo(name)!.source ? ` by ${correctorInfo(name)!.source!.file}` : ' by a built-in'}; rename it`);
  registerCorrector(name, String(mod.describe ?? mod.default?.describe ?? `from ${path.basename(file)}`), make, { source: { file, sha256 } });
  loaded.set(file, name);
  return name;
}

/**
 * Corrector lists as given on the command line ('a,b' or 'a+b', names or module specs) with
 * every module loaded and replaced by the name it registered.
 */
export async function resolveCorrectors(specs: string[], sep = '+'): Promise<string[]> {
  const out: string[] = [];
  for (const spec of specs) {
    const parts: string[] = [];
    for (const p of spec.split(sep).map((s) => s.trim()).filter(Boolean)) parts.push(isModuleSpec(p) ? await loadCorrectorModule(p) : p);
    out.push(parts.join(sep));
  }
  return out;
}
