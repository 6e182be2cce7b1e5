/** driftlab schedule: print (and plot) a noise schedule. */
import type { CommandModule } from 'yargs';
import { SCHEDULE_KINDS, ScheduleKind, makeSchedule } from '../diffusion/schedule.js';
import { writeChart } from '../plot/chart.js';
import { DriftlabError } from '../util/errors.js';
import { checkWritable } from './common.js';

export const scheduleCommand: CommandModule<any, any> = {
  command: 'schedule',
  describe: 'print a noise schedule (betas, alphaBar, SNR) and optionally plot alphaBar and log-SNR',
  builder: (y) => y
    .option('kind', { type: 'string', default: 'linear', describe: `schedule: ${SCHEDULE_KINDS.join(', ')}` })
    .option('timesteps', { type: 'number', default: 1000, describe: 'T' })
    .option('beta-start', { type: 'number', default: 1e-4 })
    .option('beta-end', { type: 'number', default: 0.02 })
    .option('json', { type: 'boolean', default: false, describe: 'print the full tables as JSON' })
    .option('plot', { type: 'string', describe: 'write a plot of alphaBar and log-SNR against t (.svg or .png)' })
    .option('overwrite', { type: 'boolean', default: false }),
  handler: async (a) => {
    if (!SCHEDULE_KINDS.includes(a.kind)) throw new DriftlabError(`unknown schedule '${a.kind}'; choose one of ${SCHEDULE_KINDS.join(', ')}`);
    if (a.plot && !/\.(svg|png)$/i.test(a.plot)) throw new DriftlabError(`--plot must end in .svg or .png, got ${a.plot}`);
    checkWritable(a.plot, a.overwrite);
    const s = makeSchedule({ kind: a.kind as ScheduleKind, timesteps: a.timesteps, betaStart: a.betaStart, betaEnd: a.betaEnd });
    if (a.json) {
      const arr = (x: Float64Array) => Array.from(x);
      process.stdout.write(JSON.stringify({
        kind: s.config.kind, timesteps: s.T, betas: arr(s.betas), alphas: arr(s.alphas), alphasCumprod: arr(s.alphasCumprod),
        posteriorVarianceFixedSmall: arr(s.posteriorVarianceSmall), posteriorVarianceFixedLarge: arr(s.posteriorVarianceLarge), snr: arr(s.snr),
      }) + '\n');
    } else {
      const rows = [0, 1, Math.floor(s.T / 4), Math.floor(s.T / 2), Math.floor((3 * s.T) / 4), s.T - 1].filter((t, i, v) => t < s.T && v.indexOf(t) === i);
      const lines = [`${s.config.kind} schedule, T = ${s.T}`, '     t        beta      alphaBar     log SNR'];
      for (const t of rows) lines.push(`${String(t).padStart(6)}  ${s.betas[t].toExponential(4).padStart(10)}  ${s.alphasCumprod[t].toExponential(4).padStart(11)}  ${Math.log(s.snr[t]).toFixed(3).padStart(10)}`);
      process.stdout.write(lines.join('\n') + '\n');
    }
    if (a.plot) {
      const t = Array.from({ length: s.T }, (_, i) => i);
      writeChart(a.plot, {
        title: `${s.config.kind} schedule (T = ${s.T})`, xlabel: 'timestep t', ylabel: 'alphaBar  |  log-SNR / 10',
        series: [
          { name: 'alphaBar', x: t, y: Array.from(s.alphasCumprod) },
          { name: 'log-SNR / 10', x: t, y: Array.from(s.snr, (v) => Math.log(v) / 10) },
        ],
      });
      process.stderr.write(`plot: ${a.plot}\n`);
    }
  },
};
