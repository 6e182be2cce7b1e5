/** One parser for corrector settings on the command line (drift, demo, rollout, fit-corrector, experiments). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCorrectorConfig } from '../../src/commands/common.js';
import { throwsDriftlab } from '../helpers/common.js';

test('per-corrector objects are returned as given; nothing given is {}', () => {
  assert.equal(parseCorrectorConfig(undefined), {});
  assert.equal(parseCorrectorConfig('{"renoise": {"t": 100}, "kalman": {"dir": "k/"}}'), { renoise: { t: 100 }, kalman: { dir: 'k/' } });
});

test("a single corrector's bare settings only where allowed", () => {
  assert.equal(parseCorrectorConfig('{"t": 100}', 'corrector-config', true), { t: 100 });
  throwsDriftlab(() => parseCorrectorConfig('{"t": 100}'), /--corrector-config must be a JSON object of objects/);
});

test('bad input names the flag it came from', () => {
  throwsDriftlab(() => parseCorrectorConfig('{t: 1}'), /--corrector-config is not valid JSON/);
  throwsDriftlab(() => parseCorrectorConfig('[1]', 'config', true), /--config must be a JSON object: \{"NAME": \{\.\.\.\}\} or the settings/);
  throwsDriftlab(() => parseCorrectorConfig('null'), /--corrector-config must be a JSON object/);
  throwsDriftlab(() => parseCorrectorConfig('{"renoise": [1]}'), /object of objects/);
});

test.run();
