/**
 * Bad input through the real CLI: one line on stderr saying what is wrong, non-zero exit,
 * no stack trace, and no existing output overwritten or half-written.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'driftlab-cli-'));
const ckpt = path.join(tmp, 'ck');

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: tmp });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The error contract: non-zero exit, exactly one 'driftlab: error:' line matching `re`, no stack. */
function expectError(r: ReturnType<typeof run>, re: RegExp) {
  assert.ok(r.code !== 0 && r.code !== null, `exit code ${r.code}`);
  const lines = r.err.split('\n').filter((l) => l.startsWith('driftlab: error:'));
  assert.is(lines.length, 1, `stderr: ${r.err}`);
  assert.match(lines[0], re);
  assert.not.match(r.err, /\n\s+at /, 'stack trace printed');
}

test.before(() => {
  const r = run('train', '--preset', 'mnist-tiny', '--steps', '2', '--out', ckpt, '--workers', '1');
  assert.is(r.code, 0, r.err);
});
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('unknown preset', () => expectError(run('train', '--preset', 'mnist-huge', '--out', path.join(tmp, 'x')), /unknown preset 'mnist-huge'.*mnist-tiny/));
test('unknown schedule', () => expectError(run('schedule', '--kind', 'quadratic'), /unknown schedule 'quadratic'/));
test('zero and negative steps', () => {
  expectError(run('train', '--preset', 'mnist-tiny', '--steps', '0', '--out', path.join(tmp, 'y')), /--steps must be a positive integer/);
  expectError(run('sample', '--ckpt', ckpt, '--steps', '-5', '--npy', path.join(tmp, 'a.npy')), /--steps must be a positive integer/);
  expectError(run('schedule', '--timesteps', '0'), /timesteps must be a positive integer/);
});
test('checkpoint path that does not exist', () => expectError(run('sample', '--ckpt', path.join(tmp, 'nope'), '--npy', path.join(tmp, 'b.npy')), /checkpoint not found/));

test('truncated safetensors', () => {
  const bad = path.join(tmp, 'trunc');
  fs.cpSync(ckpt, bad, { recursive: true });
  const f = path.join(bad, 'ema.safetensors');
  const bytes = fs.readFileSync(f);
  fs.writeFileSync(f, bytes.subarray(0, bytes.length - 1000));
  expectError(run('sample', '--ckpt', bad, '--npy', path.join(tmp, 'c.npy')), /truncated/);
  expectError(run('info', bad), /truncated|ema/);
});

test('config that does not match the weights', () => {
  const bad = path.join(tmp, 'mismatch');
  fs.cpSync(ckpt, bad, { recursive: true });
  const cfgPath = path.join(bad, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
  cfg.model.blockOutChannels = [8, 24];
  fs.writeFileSync(cfgPath, JSON.stringify(cfg));
  expectError(run('sample', '--ckpt', bad, '--npy', path.join(tmp, 'd.npy')), /does not match config\.json/);
});

test('IDX file with the wrong magic', () => {
  const f = path.join(tmp, 'labels-idx1-ubyte');
  const b = Buffer.alloc(8 + 3);
  b.writeUInt32BE(0x00000801, 0);
  b.writeUInt32BE(3, 4);
  fs.writeFileSync(f, b);
  expectError(run('train', '--preset', 'mnist-tiny', '--steps', '1', '--idx-images', f, '--out', path.join(tmp, 'z')), /magic/);
});

test('existing output is neither overwritten nor half-written', () => {
  const grid = path.join(tmp, 'grid.png');
  fs.writeFileSync(grid, 'precious');
  expectError(run('sample', '--ckpt', ckpt, '--n', '2', '--steps', '2', '--grid', grid), /already exists/);
  assert.is(fs.readFileSync(grid, 'utf8'), 'precious');
  // a failing run leaves no partial output behind
  const npy = path.join(tmp, 'never.npy');
  expectError(run('sample', '--ckpt', ckpt, '--steps', '5000', '--npy', npy), /exceeds/);
  assert.not.ok(fs.existsSync(npy));
  assert.is(fs.readdirSync(tmp).filter((f) => f.includes('.tmp')).length, 0);
});

test('training over an existing checkpoint needs --resume or --overwrite', () => {
  const before = fs.readFileSync(path.join(ckpt, 'model.safetensors'));
  expectError(run('train', '--preset', 'mnist-tiny', '--steps', '2', '--out', ckpt, '--workers', '1'), /already holds a checkpoint/);
  assert.ok(before.equals(fs.readFileSync(path.join(ckpt, 'model.safetensors'))));
});

test('a valid sample run works and is deterministic for a seed', () => {
  const a = path.join(tmp, 's1.npy'), b = path.join(tmp, 's2.npy');
  assert.is(run('sample', '--ckpt', ckpt, '--n', '3', '--steps', '3', '--npy', a, '--seed', '7').code, 0);
  assert.is(run('sample', '--ckpt', ckpt, '--n', '3', '--steps', '3', '--npy', b, '--seed', '7').code, 0);
  assert.ok(fs.readFileSync(a).equals(fs.readFileSync(b)), 'same seed gave different bytes');
});

test.run();
