#!/usr/bin/env node
/**
 * driftlab command line. One file per command under commands/; each exports a yargs module.
 * Errors meant for users (DriftlabError) print one line and exit non-zero; anything else also
 * prints one line, plus the stack when DRIFTLAB_DEBUG=1.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { globalOptions } from './commands/globals.js';
import { DriftlabError } from './util/errors.js';
import { trainCommand } from './commands/train.js';
import { sampleCommand } from './commands/sample.js';
import { scheduleCommand } from './commands/schedule.js';
import { plotCommand } from './commands/plot.js';
import { infoCommand } from './commands/info.js';
import { quickstartCommand } from './commands/quickstart.js';
import { exportCommand } from './commands/export.js';
import { dataCommand } from './commands/data.js';
import { serveCommand } from './commands/serve.js';
import { trainVideoCommand } from './commands/train-video.js';
import { sampleVideoCommand } from './commands/sample-video.js';
import { fitCorrectorCommand, rolloutCommand } from './commands/rollout.js';
import { experimentCommand } from './commands/experiment.js';
import { driftCommand } from './commands/drift.js';
import { demoCommand } from './commands/demo.js';
import { sweepCommand, workerCommand } from './commands/sweep.js';

export function fail(e: unknown): never {
  const debug = process.env.DRIFTLAB_DEBUG === '1';
  if (e instanceof DriftlabError) {
    process.stderr.write(`driftlab: error: ${e.message}\n`);
    if (debug) process.stderr.write(`${e.stack}\n`);
    process.exit(e.exitCode);
  }
  const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
  process.stderr.write(`driftlab: internal error: ${msg} (set DRIFTLAB_DEBUG=1 for the stack trace)\n`);
  if (debug && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  process.exit(1);
}

async function main() {
  await globalOptions(yargs(hideBin(process.argv))
    .scriptName('driftlab')
    .usage('driftlab <command> [options]\n\nDiffusion models and autoregressive video diffusion with online drift correction, on a laptop CPU.'))
    .command(demoCommand)
    .command(quickstartCommand)
    .command(trainCommand)
    .command(sampleCommand)
    .command(scheduleCommand)
    .command(plotCommand)
    .command(infoCommand)
    .command(exportCommand)
    .command((await import('./commands/eval.js')).evalCommand)
    .command(dataCommand)
    .command(serveCommand)
    .command(trainVideoCommand)
    .command(sampleVideoCommand)
    .command(rolloutCommand)
    .command(fitCorrectorCommand)
    .command(driftCommand)
    .command(experimentCommand)
    .command(sweepCommand)
    .command(workerCommand)
    .demandCommand(1, 'name a command; see driftlab --help')
    .strict()
    .recommendCommands()
    .fail((msg, err) => {
      if (err) fail(err);
      process.stderr.write(`driftlab: error: ${msg}\n`);
      process.exit(2);
    })
    .help()
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .parseAsync();
}

main().catch(fail);
