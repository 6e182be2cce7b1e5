/** Options every driftlab command takes (the CLI and the sweep runner parse commands with the same ones). */
import type { Argv } from 'yargs';
import { BACKEND_CHOICES } from '../backend.js';

export function globalOptions<T>(y: Argv<T>): Argv<any> {
  return y
    .option('backend', { choices: BACKEND_CHOICES, default: 'auto', describe: 'tensor backend (auto: tfjs-node-gpu > tfjs-node > wasm > cpu)', global: true })
    .option('seed', { type: 'number', default: 0, describe: 'random seed: same seed, same backend, same bytes', global: true });
}
