/** sample-video end to end through the CLI: outputs, context frames kept, determinism, bad input. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/common.js';
import { readNpy } from '../../src/io/npy.js';
import { decodeGif } from '../../src/video/writers.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.js');
const dir = tempDir('driftlab-sv-');
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
let trained = false;
const ckpt = path.join(dir, 'video');
function ensureTrained() {
  if (trained) return;
  const r = run('train-video', '--preset', 'mmnist-tiny', '--steps', '4', '--out', ckpt, '--workers', '1');
  assert.is(r.status, 0, r.stderr);
  trained = true;
}

test('writes truth/generated .npy, filmstrip, GIF; keeps the context frames; same seed same bytes', async () => {
  ensureTrained();
  for (const out of ['a', 'b']) {
    const r = run('sample-video', '--ckpt', ckpt, '--out', path.join(dir, out), '--clips', '2', '--steps', '3', '--seed', '5', '--engine', 'tfjs');
    assert.is(r.status, 0, r.stderr);
  }
  for (const f of ['truth.npy', 'generated.npy', 'run.json', 'filmstrip.png', 'clips.gif']) assert.ok(fs.existsSync(path.join(dir, 'a', f)), f);
  const truth = await readNpy(path.join(dir, 'a', 'truth.npy'));
  const gen = await readNpy(path.join(dir, 'a', 'generated.npy'));
  assert.equal(truth.shape, [2, 6, 16, 16]);
  const fr = 16 * 16;
  for (let n = 0; n < 2; n++) for (let f = 0; f < 3; f++) {
    const o = (n * 6 + f) * fr;
    assert.equal(Array.from(gen.data.slice(o, o + fr) as Uint8Array), Array.from(truth.data.slice(o, o + fr) as Uint8Array), `context frame ${f} of clip ${n} changed`);
  }
  assert.ok(fs.readFileSync(path.join(dir, 'a', 'generated.npy')).equals(fs.readFileSync(path.join(dir, 'b', 'generated.npy'))));
  const gif = decodeGif(new Uint8Array(fs.readFileSync(path.join(dir, 'a', 'clips.gif'))));
  assert.is(gif.T, 6);
});

test('bad input: context out of range, an image checkpoint, a non-empty output folder', () => {
  ensureTrained();
  const r1 = run('sample-video', '--ckpt', ckpt, '--out', path.join(dir, 'c'), '--context', '6');
  assert.ok(r1.status !== 0);
  assert.match(r1.stderr, /--context must be an integer in 0\.\.5/);
  const img = path.join(dir, 'img');
  assert.is(run('train', '--preset', 'mnist-tiny', '--steps', '1', '--out', img, '--workers', '1').status, 0);
  const r2 = run('sample-video', '--ckpt', img, '--out', path.join(dir, 'd'));
  assert.match(r2.stderr, /is an image checkpoint/);
  const r3 = run('sample-video', '--ckpt', ckpt, '--out', path.join(dir, 'a'));
  assert.match(r3.stderr, /is not empty/);
});

test.run();
