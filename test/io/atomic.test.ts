import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, rejectsDriftlab } from '../helpers/common.js';
import { writeFileAtomic, writeFileNoClobber } from '../../src/io/atomic.js';


test('writeFileAtomic writes, replaces and leaves no temp files', async () => {
  const dir = tempDir('driftlab-atomic-');
  const p = join(dir, 'a.bin');
  await writeFileAtomic(p, Uint8Array.from([1, 2, 3]));
  assert.equal(Array.from(readFileSync(p)), [1, 2, 3]);
  await writeFileAtomic(p, 'hello');
  assert.is(readFileSync(p, 'utf8'), 'hello');
  assert.equal(readdirSync(dir), ['a.bin']);
});

test('writeFileAtomic into a missing directory is a DriftlabError and cleans up', async () => {
  const dir = tempDir('driftlab-atomic-');
  await rejectsDriftlab(writeFileAtomic(join(dir, 'no', 'such', 'x.bin'), 'x'), /does not exist; create it first/);
  assert.equal(readdirSync(dir), []);
});

test('writeFileNoClobber refuses to overwrite unless asked', async () => {
  const dir = tempDir('driftlab-atomic-');
  const p = join(dir, 'out.txt');
  writeFileSync(p, 'original');
  await rejectsDriftlab(writeFileNoClobber(p, 'new'), /already exists; pass --overwrite/);
  assert.is(readFileSync(p, 'utf8'), 'original');
  await writeFileNoClobber(p, 'new', { overwrite: true });
  assert.is(readFileSync(p, 'utf8'), 'new');
  await writeFileNoClobber(join(dir, 'fresh.txt'), 'ok');
  assert.is(readFileSync(join(dir, 'fresh.txt'), 'utf8'), 'ok');
  assert.equal(readdirSync(dir).sort(), ['fresh.txt', 'out.txt']);
});

test.run();
