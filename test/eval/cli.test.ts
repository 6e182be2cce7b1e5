/**
 * `driftlab eval frechet` and `driftlab eval frames` through the real CLI: JSON output equal to
 * the library's numbers, and bad input as one 'driftlab: error:' line with a non-zero exit.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NpyArray, encodeNpy } from '../../src/io/npy.js';
import { frechetFromFeatures } from '../../src/eval/frechet.js';
import { Rng } from '../../src/util/rng.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'driftlab-eval-cli-'));
const f = (name: string) => path.join(tmp, name);

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: tmp });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function expectError(r: ReturnType<typeof run>, re: RegExp) {
  assert.ok(r.code !== 0 && r.code !== null, `exit code ${r.code}; stdout ${r.out}`);
  const lines = r.err.split('\n').filter((l) => l.startsWith('driftlab: error:'));
  assert.is(lines.length, 1, `stderr: ${r.err}`);
  assert.match(lines[0], re);
  assert.not.match(r.err, /\n\s+at /, 'stack trace printed');
}

const save = (name: string, a: Omit<NpyArray, 'fortranOrder'>) => fs.writeFileSync(f(name), encodeNpy({ ...a, fortranOrder: false }));

const rng = new Rng(0);
const A = Float32Array.from({ length: 50 * 4 }, () => rng.normal());
const B = Float64Array.from({ length: 30 * 4 }, () => 0.5 + 2 * rng.normal());

test.before(() => {
  save('a.npy', { dtype: 'float32', shape: [50, 4], data: A });
  save('b.npy', { dtype: 'float64', shape: [30, 4], data: B });
  save('d5.npy', { dtype: 'float32', shape: [10, 5], data: new Float32Array(50) });
  save('one.npy', { dtype: 'float32', shape: [1, 4], data: new Float32Array(4) });
  save('rank3.npy', { dtype: 'float32', shape: [2, 5, 4], data: new Float32Array(40) });
  save('u8feat.npy', { dtype: 'uint8', shape: [10, 4], data: new Uint8Array(40) });
  const truth = Uint8Array.from({ length: 2 * 3 * 16 * 16 }, () => rng.int(256));
  save('truth.npy', { dtype: 'uint8', shape: [2, 3, 16, 16], data: truth });
  // float64 so that frame 0 equals truth / 255 exactly
  const pred = Float64Array.from(truth, (v, i) => (Math.floor(i / 256) % 3 === 0 ? v / 255 : Math.min(1, v / 255 + 0.02)));
  save('pred.npy', { dtype: 'float64', shape: [2, 3, 16, 16], data: pred });
  save('pred-bad.npy', { dtype: 'float64', shape: [2, 3, 16, 16], data: pred.map((v) => 2 * v - 1) });
  save('pred-shape.npy', { dtype: 'float32', shape: [3, 16, 16], data: new Float32Array(3 * 256) });
});
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('eval frechet --json prints {"frechet": value} equal to the library', () => {
  const r = run('eval', 'frechet', f('a.npy'), f('b.npy'), '--json');
  assert.is(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(Object.keys(j), ['frechet']);
  const want = frechetFromFeatures(A, 50, B, 30, 4).frechet;
  assert.ok(Math.abs(j.frechet - want) < 1e-12 * Math.max(1, want), `${j.frechet} vs ${want}`);
  const human = run('eval', 'frechet', f('a.npy'), f('b.npy'));
  assert.is(human.code, 0);
  assert.match(human.out, /Frechet distance d\^2 = /);
});

test('eval frames --json: one value per frame, PSNR of identical frames as null', () => {
  const r = run('eval', 'frames', f('pred.npy'), f('truth.npy'), '--json');
  assert.is(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  for (const k of ['mse', 'psnr', 'ssim']) assert.is(j[k].length, 3, k);
  assert.is(j.mse[0], 0);
  assert.is(j.psnr[0], null);
  assert.ok(Math.abs(j.ssim[0] - 1) < 1e-12);
  assert.ok(j.psnr[1] > 30 && j.psnr[1] < 40, `psnr ${j.psnr[1]}`);
  assert.ok(j.ssim[1] < 1 && j.ssim[1] > 0.9);
  assert.is(j.n, 2);
  assert.is(j.data_range, 1);
});

test('bad input: one line, non-zero exit', () => {
  expectError(run('eval', 'frechet', f('a.npy'), f('missing.npy')), /npy file not found: .*missing\.npy/);
  expectError(run('eval', 'frechet', f('a.npy'), f('d5.npy')), /D=4 .* D=5/);
  expectError(run('eval', 'frechet', f('a.npy'), f('one.npy')), /N=1 .*at least 2/);
  expectError(run('eval', 'frechet', f('rank3.npy'), f('a.npy')), /2-D array \[N,D\]/);
  expectError(run('eval', 'frechet', f('u8feat.npy'), f('a.npy')), /dtype uint8; features must be float32 or float64/);
  expectError(run('eval', 'frames', f('pred.npy'), f('pred-shape.npy')), /same shape/);
  expectError(run('eval', 'frames', f('pred-bad.npy'), f('truth.npy')), /must lie in \[0,1\]/);
  expectError(run('eval', 'fid', '--ckpt', f('nope'), '--n', '1'), /--n must be at least 2/);
});

test.run();
