/**
 * Correctors by name. Each lives in its own file under correctors/ and registers itself here;
 * the sampler knows none of them. `--corrector a,b` chains them in order.
 */
import * as tf from '@tensorflow/tfjs';
import { epsFromX0, x0FromEps } from '../diffusion/samplers.js';
import { DriftlabError } from '../util/errors.js';
import type { CorrectorContext, CorrectorFactory, DriftCorrector, FrameBatch, FrameHistory, StepCorrection, WindowStep } from './corrector.js';

const factories = new Map<string, { make: CorrectorFactory; describe: string }>();

export function registerCorrector(name: string, describe: string, make: CorrectorFactory): void {
  if (factories.has(name)) throw new Error(`corrector ${name} registered twice`);
  factories.set(name, { make, describe });
}

export function listCorrectors(): { name: string; describe: string }[] {
  return [...factories.entries()].map(([name, f]) => ({ name, describe: f.describe }));
}

export function makeCorrector(name: string, ctx: CorrectorContext, config: Record<string, unknown> = {}): DriftCorrector {
  const f = factories.get(name);
  if (!f) throw new DriftlabError(`unknown corrector '${name}'; choose from ${[...factories.keys()].join(', ')}`);
  return f.make(ctx, config);
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
