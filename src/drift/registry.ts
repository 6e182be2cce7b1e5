/**
 * Correctors by name. Each lives in its own file under correctors/ and registers itself here;
 * the sampler knows none of them. `--corrector a,b` chains them in order.
 */
import { DriftlabError } from '../util/errors.js';
import type { CorrectorContext, CorrectorFactory, DriftCorrector, FrameBatch, FrameHistory } from './corrector.js';

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
  };
}
