/** driftlab data moving-mnist: write seeded Moving-MNIST clips with their ground truth. */
import type { CommandModule } from 'yargs';
import * as fs from 'node:fs';
import { MovingMnist } from '../../datasets/moving-mnist/index.js';
import { NpyAppendWriter } from '../io/npy-append.js';
import { writeFileAtomic } from '../io/atomic.js';
import { DriftlabError } from '../util/errors.js';
import { Progress } from '../util/progress.js';
import { checkWritable, positiveInt } from './common.js';

const movingMnist: CommandModule<any, any> = {
  command: 'moving-mnist',
  describe: 'write N seeded Moving-MNIST clips as uint8 [N,T,H,W] .npy (+ per-digit trajectories as JSON)',
  builder: (y) => y
    .option('count', { type: 'number', default: 16, describe: 'number of clips N' })
    .option('frames', { type: 'number', default: 20, describe: 'frames per clip T (any length; generated lazily)' })
    .option('size', { type: 'number', default: 64, describe: 'canvas side in pixels' })
    .option('digits', { type: 'number', default: 2, describe: 'digits per clip' })
    .option('speed-min', { type: 'number', default: 3.6, describe: 'min speed in pixels/frame (Srivastava et al.: 0.1 x 36)' })
    .option('speed-max', { type: 'number', default: 3.6, describe: 'max speed in pixels/frame' })
    .option('stochastic', { type: 'boolean', default: false, describe: 'SMMNIST: a new random direction at each bounce' })
    .option('split', { choices: ['train', 'test', 'all'], default: 'train', describe: 'which digit images: a fixed 80/20 split of the bundled digits' })
    .option('out', { type: 'string', demandOption: true, describe: 'output .npy' })
    .option('trajectories', { type: 'string', describe: 'write ground truth JSON: per clip, per digit {label, index, positions, velocities}' })
    .option('overwrite', { type: 'boolean', default: false }),
  handler: async (a) => {
    const count = positiveInt('count', a.count), T = positiveInt('frames', a.frames);
    if (!String(a.out).endsWith('.npy')) throw new DriftlabError(`--out must end in .npy, got ${a.out}`);
    checkWritable(a.out, a.overwrite);
    checkWritable(a.trajectories, a.overwrite);
    const mm = new MovingMnist({
      size: a.size, digits: a.digits, speedMin: a.speedMin, speedMax: a.speedMax, stochastic: a.stochastic, split: a.split,
    }, a.seed);
    const S = mm.config.size;
    const partial = `${a.out}.partial-${process.pid}`;
    const writer = await NpyAppendWriter.create(partial, 'uint8', [T, S, S]);
    const truth: unknown[] = [];
    const progress = new Progress({ total: count * T, label: 'moving-mnist', unit: 'frame' });
    const clipBuf = new Uint8Array(T * S * S);
    try {
      for (let n = 0; n < count; n++) {
        const clip = mm.clip(n, !!a.trajectories);
        for (let t = 0; t < T; t++) {
          clip.next(clipBuf.subarray(t * S * S, (t + 1) * S * S));
          if ((t + 1) % 256 === 0 || t === T - 1) progress.tick(((t % 256) + 1));
        }
        await writer.append(clipBuf);
        if (a.trajectories) truth.push({ clip: n, digits: clip.truth });
      }
      await writer.close();
      if (a.trajectories) {
        const meta = { format: 'driftlab-moving-mnist-1', seed: a.seed, config: mm.config, frames: T, positions: 'top-left [x, y] in pixels (float; drawn at Math.round)', clips: truth };
        await writeFileAtomic(a.trajectories, JSON.stringify(meta));
      }
      fs.renameSync(partial, a.out);
    } catch (e) {
      await writer.close().catch(() => undefined);
      fs.rmSync(partial, { force: true });
      throw e;
    }
    process.stdout.write(`${count} clips x ${T} frames of ${S}x${S} (${mm.config.digits} digits${mm.config.stochastic ? ', stochastic' : ''}, seed ${a.seed}) -> ${a.out}${a.trajectories ? ` + ${a.trajectories}` : ''}\n`);
  },
};

export const dataCommand: CommandModule<any, any> = {
  command: 'data <dataset>',
  describe: 'generate datasets (moving-mnist)',
  builder: (y) => y.command(movingMnist).demandCommand(1, 'name a dataset: moving-mnist'),
  handler: () => undefined,
};
