/** driftlab plot: re-render an (edited) Vega-Lite figure spec to SVG, PNG or PDF. */
import type { CommandModule } from 'yargs';
import * as path from 'node:path';
import { figureFormat, readSpec, renderSpecFile } from '../plot/figure.js';
import { validateVegaLite } from '../plot/vl-schema.js';
import { DriftlabError } from '../util/errors.js';
import { checkWritable } from './common.js';

export const plotCommand: CommandModule<any, any> = {
  command: 'plot <spec>',
  describe: 'render a Vega-Lite spec (e.g. plots/mse.vl.json, data read beside it) to .svg, .png or .pdf',
  builder: (y) => y
    .positional('spec', { type: 'string', describe: 'Vega-Lite spec file (NAME.vl.json); relative data URLs are read from its folder' })
    .option('out', { type: 'string', demandOption: true, describe: 'output file: .svg, .png or .pdf' })
    .option('scale', { type: 'number', default: 2, describe: 'PNG pixels per spec pixel' })
    .option('validate', { type: 'boolean', default: true, describe: 'check the spec against the Vega-Lite JSON schema first (--no-validate skips)' })
    .option('overwrite', { type: 'boolean', default: false }),
  handler: async (a) => {
    figureFormat(a.out);
    if (!(a.scale > 0 && a.scale <= 16)) throw new DriftlabError(`--scale must be in (0, 16], got ${a.scale}`);
    checkWritable(a.out, a.overwrite);
    if (path.resolve(a.out) === path.resolve(a.spec)) throw new DriftlabError('--out would overwrite the spec itself; choose another path');
    if (a.validate) {
      const problems = await validateVegaLite(readSpec(a.spec));
      if (problems.length) throw new DriftlabError(`${a.spec} is not valid Vega-Lite (${problems.join('; ')}); fix it, or pass --no-validate to try anyway`);
    }
    await renderSpecFile(a.spec, [a.out], { scale: a.scale });
    process.stderr.write(`plot: ${a.out}\n`);
  },
};
