/** driftlab info CKPT: summarize a checkpoint folder. */
import type { CommandModule } from 'yargs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadCheckpoint, resolveCheckpointDir } from '../diffusion/checkpoint.js';
import { countParams } from '../diffusion/unet.js';
import { modelParamSpecs } from '../diffusion/arch.js';

export const infoCommand: CommandModule<any, any> = {
  command: 'info <ckpt>',
  describe: 'summarize a checkpoint: model, schedule, objective, training state, files',
  builder: (y) => y.positional('ckpt', { type: 'string', describe: 'checkpoint folder' }).option('json', { type: 'boolean', default: false }),
  handler: async (a) => {
    const dir = resolveCheckpointDir(a.ckpt);
    const ck = await loadCheckpoint(dir, { optimizer: false });
    const c = ck.config;
    const files = fs.readdirSync(dir).map((f) => ({ file: f, bytes: fs.statSync(path.join(dir, f)).size }));
    const params = countParams(modelParamSpecs(c.model));
    const logPath = path.join(dir, 'train-log.jsonl');
    let lastLog: any = null;
    if (fs.existsSync(logPath)) {
      const lines = fs.readFileSync(logPath, 'utf8').trim().split('\n');
      try { lastLog = JSON.parse(lines.at(-1)!); } catch { /* ignore */ }
    }
    const summary = { dir, format: c.format, params, model: c.model, schedule: c.schedule, objective: c.objective, training: c.training, trainState: ck.trainState ?? null, hasEma: !!ck.ema, lastLog, files };
    if (a.json) { process.stdout.write(JSON.stringify(summary, null, 2) + '\n'); return; }
    const m = c.model;
    const out = [
      `checkpoint ${dir} (${c.format})`,
      `  model     U-Net ${m.sampleSize}x${m.sampleSize}x${m.inChannels}, channels [${m.blockOutChannels}], ${m.layersPerBlock} ResBlock/level, attention [${m.attention.map((b) => (b ? 'y' : '-')).join('')}]${m.midAttention ? ' + mid' : ''}, ${m.numClasses ? `${m.numClasses} classes + null` : 'unconditional'}`,
      `  params    ${params.toLocaleString('en-US')}`,
      `  schedule  ${c.schedule.kind}, T=${c.schedule.timesteps}${c.schedule.kind === 'linear' ? `, beta ${c.schedule.betaStart}..${c.schedule.betaEnd}` : ''}`,
      `  objective ${c.objective.prediction} prediction, ${c.objective.weighting} weighting`,
      `  training  ${c.training ? `preset ${c.training.preset}, batch ${c.training.batchSize}, lr ${c.training.lr}` : 'unknown'}${ck.trainState ? `, at step ${ck.trainState.step}` : ''}${lastLog ? `, last loss ${Number(lastLog.loss).toFixed(4)}` : ''}`,
      `  weights   model${ck.ema ? ' + ema' : ''}; files: ${files.map((f) => `${f.file} (${(f.bytes / 1024).toFixed(0)} KiB)`).join(', ')}`,
    ];
    process.stdout.write(out.join('\n') + '\n');
  },
};
