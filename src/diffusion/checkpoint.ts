/**
 * Checkpoint folders (diffusers' config.json idea; weights in safetensors so PyTorch users can
 * open them with safetensors.torch.load_file):
 *
 *   config.json        {format, model, schedule, objective, training}
 *   model.safetensors  raw weights, tfjs layouts: conv [KH,KW,Cin,Cout], linear [in,out]
 *   ema.safetensors    EMA weights, same names and layouts (what sampling uses by default);
 *                      shipped checkpoints carry only this file (and config.json)
 *   optimizer.safetensors  AdamW moments "m.<name>", "v.<name>" (absent in shipped checkpoints)
 *   train-state.json   step, AdamW step count, RNG and data-iterator states
 *
 * Saving is atomic for the folder as a whole: everything is written to DIR.tmp, then DIR is
 * moved to DIR.prev, DIR.tmp to DIR, and DIR.prev removed. A kill in between leaves DIR.prev,
 * which loading falls back to.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { NamedTensor, decodeSafetensors, encodeSafetensors } from '../io/safetensors.js';
import { readFileChecked } from '../io/atomic.js';
import { DriftlabError } from '../util/errors.js';
import { UNetConfig, validateUNetConfig } from './config.js';
import { FlatLayout, flatLayout, joinFlat, splitFlat } from './model.js';
import { ObjectiveConfig, DEFAULT_OBJECTIVE, validateObjective } from './objective.js';
import { ScheduleConfig, validateScheduleConfig, DEFAULT_SCHEDULE } from './schedule.js';
import { modelParamSpecs } from './arch.js';

export const CHECKPOINT_FORMAT = 'driftlab-unet-1';

export interface CheckpointConfig {
  format: string;
  model: UNetConfig;
  schedule: ScheduleConfig;
  objective: ObjectiveConfig;
  training?: Record<string, unknown>;
}

export interface CheckpointData {
  config: CheckpointConfig;
  params: Float32Array;
  ema?: Float32Array;
  optimizer?: { m: Float32Array; v: Float32Array };
  trainState?: Record<string, any>;
}

function toTensors(layout: FlatLayout, flat: Float32Array, prefix = ''): Record<string, NamedTensor> {
  const out: Record<string, NamedTensor> = {};
  const named = splitFlat(layout, flat);
  for (const s of layout.specs) out[prefix + s.name] = { dtype: 'F32', shape: s.shape, data: named.get(s.name)! };
  return out;
}

/** Check tensors against the names and shapes the config implies, then flatten. */
function fromTensors(layout: FlatLayout, tensors: Record<string, NamedTensor>, file: string, prefix = ''): Float32Array {
  const named = new Map<string, Float32Array>();
  const expected = new Set(layout.specs.map((s) => prefix + s.name));
  for (const s of layout.specs) {
    const t = tensors[prefix + s.name];
    if (!t) throw new DriftlabError(`${file} does not match config.json: tensor ${prefix + s.name} is missing (was the checkpoint made with another config?)`);
    if (t.dtype !== 'F32') throw new DriftlabError(`${file}: tensor ${prefix + s.name} has dtype ${t.dtype}, expected F32`);
    if (t.shape.join(',') !== s.shape.join(',')) {
      throw new DriftlabError(`${file} does not match config.json: ${prefix + s.name} has shape [${t.shape}] but the config implies [${s.shape}]`);
    }
    named.set(s.name, t.data as Float32Array);
  }
  const extra = Object.keys(tensors).filter((k) => k.startsWith(prefix) && !expected.has(k));
  if (extra.length) throw new DriftlabError(`${file} does not match config.json: unexpected tensor ${extra[0]} (${extra.length} extra)`);
  return joinFlat(layout, named);
}

export async function saveCheckpoint(dir: string, d: CheckpointData): Promise<void> {
  const layout = flatLayout(modelParamSpecs(d.config.model));
  const tmp = `${dir}.tmp`;
  const prev = `${dir}.prev`;
  // Finish an earlier save that was killed between its renames: DIR.prev is then the newest
  // complete checkpoint (and holds the extra files), so it becomes DIR again first.
  if (!fs.existsSync(dir) && fs.existsSync(prev)) await fsp.rename(prev, dir);
  else if (fs.existsSync(prev)) await moveExtras(prev, dir);
  await fsp.rm(tmp, { recursive: true, force: true });
  await fsp.mkdir(tmp, { recursive: true });
  const meta = { format: CHECKPOINT_FORMAT, layout: 'tfjs: conv [KH,KW,Cin,Cout], linear [in,out]' };
  const files: [string, Uint8Array | string][] = [
    ['config.json', JSON.stringify(d.config, null, 2) + '\n'],
    ['model.safetensors', encodeSafetensors(toTensors(layout, d.params), meta)],
  ];
  if (d.ema) files.push(['ema.safetensors', encodeSafetensors(toTensors(layout, d.ema), meta)]);
  if (d.optimizer) {
    files.push(['optimizer.safetensors', encodeSafetensors({ ...toTensors(layout, d.optimizer.m, 'm.'), ...toTensors(layout, d.optimizer.v, 'v.') }, meta)]);
  }
  if (d.trainState) files.push(['train-state.json', JSON.stringify(d.trainState, null, 2) + '\n']);
  for (const [name, data] of files) {
    const fh = await fsp.open(path.join(tmp, name), 'w');
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
  }
  await fsp.rm(prev, { recursive: true, force: true });
  if (fs.existsSync(dir)) await fsp.rename(dir, prev);
  await fsp.rename(tmp, dir);
  // Carry over what else lives in the folder (the training log, notes): renaming keeps open
  // file descriptors valid, so a log being appended to follows along.
  if (fs.existsSync(prev)) {
    await moveExtras(prev, dir);
    await fsp.rm(prev, { recursive: true, force: true });
  }
}

/** Move every non-checkpoint entry of `from` into `to` (which must exist). */
async function moveExtras(from: string, to: string): Promise<void> {
  for (const e of await fsp.readdir(from)) {
    if (!CHECKPOINT_FILES.includes(e) && !fs.existsSync(path.join(to, e))) await fsp.rename(path.join(from, e), path.join(to, e));
  }
}

const CHECKPOINT_FILES = ['config.json', 'model.safetensors', 'ema.safetensors', 'optimizer.safetensors', 'train-state.json'];

/** Resolve a checkpoint folder, falling back to DIR.prev left by a save that was killed. */
export function resolveCheckpointDir(dir: string): string {
  if (fs.existsSync(path.join(dir, 'config.json'))) return dir;
  if (fs.existsSync(path.join(`${dir}.prev`, 'config.json'))) return `${dir}.prev`;
  if (!fs.existsSync(dir)) throw new DriftlabError(`checkpoint not found: ${dir}; pass the folder written by 'driftlab train'`);
  throw new DriftlabError(`${dir} is not a driftlab checkpoint (no config.json inside)`);
}

export async function loadCheckpointConfig(dir: string): Promise<CheckpointConfig> {
  const d = resolveCheckpointDir(dir);
  const text = Buffer.from(await readFileChecked(path.join(d, 'config.json'), 'checkpoint config')).toString('utf8');
  let cfg: CheckpointConfig;
  try {
    cfg = JSON.parse(text);
  } catch (e) {
    throw new DriftlabError(`${path.join(d, 'config.json')} is not valid JSON: ${(e as Error).message}`);
  }
  if (!cfg || typeof cfg !== 'object' || !cfg.model) throw new DriftlabError(`${path.join(d, 'config.json')} has no "model" section; not a driftlab checkpoint`);
  cfg.schedule = { ...DEFAULT_SCHEDULE, ...(cfg.schedule ?? {}) };
  cfg.objective = { ...DEFAULT_OBJECTIVE, ...(cfg.objective ?? {}) };
  validateUNetConfig(cfg.model);
  validateScheduleConfig(cfg.schedule);
  validateObjective(cfg.objective);
  return cfg;
}

export interface LoadOptions {
  ema?: boolean;
  optimizer?: boolean;
}

export async function loadCheckpoint(dir: string, opts: LoadOptions = {}): Promise<CheckpointData> {
  const d = resolveCheckpointDir(dir);
  const config = await loadCheckpointConfig(d);
  const layout = flatLayout(modelParamSpecs(config.model));
  const readTensors = async (name: string) => {
    const file = path.join(d, name);
    return { file, tensors: decodeSafetensors(await readFileChecked(file, 'checkpoint weights'), file).tensors };
  };
  const hasModel = fs.existsSync(path.join(d, 'model.safetensors'));
  const hasEma = fs.existsSync(path.join(d, 'ema.safetensors'));
  if (!hasModel && !hasEma) throw new DriftlabError(`${d} has neither model.safetensors nor ema.safetensors; the checkpoint is incomplete`);
  let ema: Float32Array | undefined;
  if (hasEma && (opts.ema !== false || !hasModel)) {
    const e = await readTensors('ema.safetensors');
    ema = fromTensors(layout, e.tensors, e.file);
  }
  // Shipped checkpoints carry only the EMA weights; they then stand in for the raw ones.
  let params = ema!;
  if (hasModel) {
    const m = await readTensors('model.safetensors');
    params = fromTensors(layout, m.tensors, m.file);
  }
  const out: CheckpointData = { config, params, ema: opts.ema === false ? undefined : ema };
  if (opts.optimizer && fs.existsSync(path.join(d, 'optimizer.safetensors'))) {
    const o = await readTensors('optimizer.safetensors');
    out.optimizer = { m: fromTensors(layout, o.tensors, o.file, 'm.'), v: fromTensors(layout, o.tensors, o.file, 'v.') };
  }
  const ts = path.join(d, 'train-state.json');
  if (fs.existsSync(ts)) out.trainState = JSON.parse(fs.readFileSync(ts, 'utf8'));
  return out;
}
