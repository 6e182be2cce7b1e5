/**
 * Correctors by name. Each lives in its own file under correctors/ and registers itself here;
 * the sampler knows none of them. `--corrector a,b` chains them in order.
 */
import * as tf from '@tensorflow/tfjs';
import { epsFromX0, x0FromEps } from '../diffusion/samplers.js';
import { DriftlabError } from '../util/errors.js';
import type { CorrectorContext, CorrectorFactory, DriftCorrector, FrameBatch, FrameHistory, StepCorrection, WindowStep } from './corrector.js';

export interface CorrectorInfo {
  name: string;
  describe: string;
  /** acts inside the sampling loop (denoiseStep); opt-in for the demo's default list */
  inLoop?: boolean;
  /** for a corrector loaded from a user's module: the file and its sha256 (recorded in run.json) */
  source?: { file: string; sha256: string };
}

const factories = new Map<string, { make: CorrectorFactory; info: CorrectorInfo }>();

/**
 * Add a corrector under a name. Built-ins call this from their own file; a user's module is
 * registered through it too (drift/external.ts), so both are made, chained and run alike.
 */
export function registerCorrector(name: string, describe: string, make: CorrectorFactory, extra: Omit<CorrectorInfo, 'name' | 'describe'> = {}): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) throw new DriftlabError(`corrector name '${name}' must be letters, digits, '.', '_' or '-'`);
  if (factories.has(name)) throw new DriftlabError(`corrector '${name}' registered twice${extra.source ? ` (${extra.source.file} reuses a taken name; rename it)` : ''}`);
  factories.set(name, { make, info: { name, describe, ...extra } });
}

export function listCorrectors(): CorrectorInfo[] {
  return [...factories.values()].map((f) => f.info);
}

export function correctorInfo(name: string): CorrectorInfo | undefined {
  return factories.get(name)?.info;
}

export function makeCorrector(name: string, ctx: CorrectorContext, config: Record<string, unknown> = {}): DriftCorrector {
  const f = factories.get(name);
  if (!f) throw new DriftlabError(`unknown corrector '${name}'; choose from ${[...factories.keys()].join(', ')}, or give a module file (./my-corrector.mjs)`);
  let c: DriftCorrector;
  try {
    c = f.make(ctx, config);
  } catch (e) {
    // a user's module throwing a plain Error is still one line naming the module, not an internal error
    if (e instanceof DriftlabError || !f.info.source) throw e;
    throw new DriftlabError(`corrector '${name}' (${f.info.source.file}) failed to start: ${firstLine(e)}`);
  }
  if (!c || typeof c.correct !== 'function' || typeof c.reset !== 'function' || typeof c.describe !== 'function') {
    throw new DriftlabError(`corrector '${name}': its factory must return an object with describe(), reset() and correct(); see docs/CORRECTORS.md`);
  }
  return f.info.source ? withSource(c, f.info.source) : c;
}

const OPTIONAL = ['contextT', 'fit', 'save', 'load', 'getState', 'setState', 'denoiseStep'] as const;

/** The first line of what a user's module threw. */
const firstLine = (e: unknown) => (e instanceof Error ? e.message.split('\n')[0] : String(e));

/**
 * The same corrector, its describe() also naming the module file and hash (so run.json records
 * them), and each of its methods turning a plain Error thrown by the module into one
 * DriftlabError line that names the corrector, its file and the method.
 */
function withSource(c: DriftCorrector, source: { file: string; sha256: string }): DriftCorrector {
  const fail = (method: string, e: unknown) => (e instanceof DriftlabError ? e : new DriftlabError(`corrector '${c.name}' (${source.file}) failed in ${method}(): ${firstLine(e)}`));
  const guard = <A extends unknown[], R>(method: string, f: (...a: A) => R) => (...a: A): R => {
    let r: R;
    try {
      r = f.apply(c, a);
    } catch (e) {
      throw fail(method, e);
    }
    return (r instanceof Promise ? r.catch((e: unknown) => { throw fail(method, e); }) : r) as R;
  };
  const w: DriftCorrector = {
    name: c.name, describe: () => ({ ...guard('describe', c.describe)(), source }),
    reset: guard('reset', c.reset), correct: guard('correct', c.correct),
  };
  for (const k of OPTIONAL) if (typeof c[k] === 'function') (w as any)[k] = guard(k, c[k] as (...a: unknown[]) => unknown);
  return w;
}

/** Several correctors applied in order, as one. */
export function chain(cs: DriftCorrector[]): DriftCorrector {
  if (cs.length === 1) return cs[0];
  return {
    name: cs.map((c) => c.name).join(','),
    describe: () => ({ chain: cs.map((c) => ({ name: c.name, ...c.describe() })) }),
    contextT: () => Math.max(0, ...cs.map((c) => c.contextT?.() ?? 0)),
    reset: (ctx, n, k) => cs.forEach((c) => c.reset(ctx, n, k)),
    async correct(frame: FrameBatch, h: FrameHistory, step: number) {
      let f = frame;
      for (const c of cs) f = await c.correct(f, h, step);
      return f;
    },
    denoiseStep: cs.some((c) => c.denoiseStep) ? (step, h) => chainSteps(cs, step, h) : undefined,
    getState: cs.some((c) => c.getState) ? () => cs.map((c) => c.getState?.()) : undefined,
    setState: (s) => cs.forEach((c, i) => { if (Array.isArray(s) && s[i] !== undefined) c.setState?.(s[i]); }),
  };
}

/**
 * In-loop hooks in order: each sees the estimates the one before it returned (the part it did
 * not return derived from x_t); the sampler gets what the last correcting hook returned.
 */
async function chainSteps(cs: DriftCorrector[], step: WindowStep, h: FrameHistory): Promise<StepCorrection | undefined> {
  let cur = step, last: StepCorrection | undefined;
  const derived: tf.Tensor[] = [];
  try {
    for (const c of cs) {
      const fix = await c.denoiseStep?.(cur, h);
      if (!fix || (!fix.x0 && !fix.eps)) continue;
      if (last) derived.push(...[last.x0, last.eps].filter((v): v is tf.Tensor4D => !!v));
      last = fix;
      const x0 = fix.x0 ?? tf.tidy(() => x0FromEps(cur.x, fix.eps!, cur.abar));
      const eps = fix.eps ?? epsFromX0(cur.x, x0, cur.abar);
      if (!fix.x0) derived.push(x0);
      if (!fix.eps) derived.push(eps);
      cur = { ...cur, x0, eps };
    }
  } finally {
    derived.forEach((d) => d.dispose());
  }
  return last;
}
