/**
 * Fitted corrector folders, the same for built-ins and a user's module: `driftlab fit-corrector`
 * and `driftlab drift` fit on real Moving-MNIST clips, call the corrector's save(dir), then write
 * DIR/driftlab-fit.json (last, atomically: a folder without it is not a finished fit unless the
 * corrector's own NAME.json is there, as in the folders shipped beside a checkpoint):
 *
 *   { format, corrector, modelId, source: {file, sha256} | null, settings, clips: {m, t}, seed }
 *
 * Loading checks that record first (the corrector's name and the model it was fitted for), so a
 * module that forgets to check the model in its own load() still refuses a foreign folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MovingMnist } from '../../datasets/moving-mnist/index.js';
import type { Pipeline } from '../diffusion/pipeline.js';
import { writeFileAtomic } from '../io/atomic.js';
import { DriftlabError } from '../util/errors.js';
import { clipWindow } from '../video/clips.js';
import { modelId } from '../video/rollout.js';
import type { ClipSet, CorrectorContext, DriftCorrector } from './corrector.js';
import { correctorInfo } from './registry.js';

export const FIT_MANIFEST = 'driftlab-fit.json';
const FORMAT = 'driftlab-corrector-fit-1';

/** m real training clips of t frames, [m, t, S, S] in [-1, 1], from the checkpoint's own Moving-MNIST settings. */
export function realClips(p: Pipeline, m: number, t: number, seed: number, ckpt = 'the checkpoint'): ClipSet {
  const data = (p.config.training as any)?.data;
  if (!data) throw new DriftlabError(`${ckpt} does not record its Moving-MNIST settings; a corrector cannot be fitted for it`);
  const S = p.config.model.sampleSize;
  const mm = new MovingMnist({ ...data, split: 'train' }, seed);
  const clips: ClipSet = { data: new Float32Array(m * t * S * S), m, t, s: S };
  for (let k = 0; k < m; k++) clips.data.set(clipWindow(mm, data.pool, k, t), k * t * S * S);
  return clips;
}

/** Fit `c` (registered as `name`) on clips, save it to dir and record the fit. */
export async function fitAndSave(
  c: DriftCorrector, name: string, dir: string, p: Pipeline, clips: ClipSet, seed: number, log?: (line: string) => void,
): Promise<void> {
  if (!c.fit || !c.save) throw new DriftlabError(`corrector '${name}' has nothing to fit (it has no fit() and save())`);
  await c.fit(clips, { pipeline: p, seed, log: log ?? (() => undefined) });
  fs.mkdirSync(dir, { recursive: true });
  fs.rmSync(path.join(dir, FIT_MANIFEST), { force: true }); // a refit: the folder is unfinished until the new record is written
  await c.save(dir);
  const { dir: _dir, source: _source, ...settings } = c.describe();
  const record = {
    format: FORMAT, corrector: name, modelId: modelId(p), source: correctorInfo(name)?.source ?? null,
    settings, clips: { m: clips.m, t: clips.t }, seed,
  };
  await writeFileAtomic(path.join(dir, FIT_MANIFEST), JSON.stringify(record, null, 2) + '\n');
}

/** Whether dir holds a finished fit of `name`: driftlab's record, or the corrector's own NAME.json. */
export function hasFit(dir: string, name: string): boolean {
  return fs.existsSync(path.join(dir, FIT_MANIFEST)) || fs.existsSync(path.join(dir, `${name}.json`));
}

/** The folder a corrector is to be loaded from: config.dir, else what its describe() names. */
export function fittedDir(c: DriftCorrector, config: Record<string, unknown>): string | undefined {
  const d = config.dir ?? c.describe().dir;
  if (d === undefined) return undefined;
  if (typeof d !== 'string' || d === '') throw new DriftlabError(`corrector '${c.name}': "dir" must be a folder path, got ${JSON.stringify(d)}`);
  return d;
}

/** Load a fitted folder into `c` (registered as `name`) after checking driftlab's record of the fit. */
export async function loadFitted(c: DriftCorrector, name: string, dir: string, ctx: CorrectorContext): Promise<void> {
  if (!c.load) throw new DriftlabError(`corrector '${name}' has no load(), so it cannot use the fitted folder ${dir}; drop "dir" from its config`);
  if (!fs.existsSync(dir)) throw new DriftlabError(`fitted folder ${dir} of corrector '${name}' does not exist; fit one with 'driftlab fit-corrector ${name} --ckpt CKPT --out ${dir}'`);
  const rp = path.join(dir, FIT_MANIFEST);
  if (fs.existsSync(rp)) {
    let r: any;
    try { r = JSON.parse(fs.readFileSync(rp, 'utf8')); } catch { throw new DriftlabError(`${rp} is not valid JSON; fit the corrector again`); }
    if (r?.format !== FORMAT) throw new DriftlabError(`${rp} is not a ${FORMAT} record; fit the corrector again`);
    if (r.corrector !== name) throw new DriftlabError(`${dir} holds a fitted '${r.corrector}', not '${name}'`);
    if (r.modelId !== ctx.modelId) throw new DriftlabError(`${dir}: '${name}' was fitted for model ${r.modelId}, this checkpoint is ${ctx.modelId}; fit it again for this checkpoint`);
  }
  await c.load(dir);
}
