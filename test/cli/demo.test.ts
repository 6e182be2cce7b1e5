/**
 * The main job (`npm start` = `driftlab demo`) on tiny settings, with the shipped checkpoints,
 * in a fresh network namespace (no network at all) where `unshare -n` is allowed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../helpers/common.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', '..');
const cli = path.join(root, 'dist', 'src', 'cli.js');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

function run(args: string[]) {
  const noNet = spawnSync('unshare', ['-n', 'true']).status === 0;
  const [cmd, argv] = noNet ? ['unshare', ['-n', process.execPath, cli, ...args]] : [process.execPath, [cli, ...args]];
  const r = spawnSync(cmd, argv as string[], { encoding: 'utf8', timeout: 240_000, cwd: root });
  return { ...r, noNet };
}

test('npm start runs the drift demo', () => {
  assert.match(pkg.scripts.start, /cli\.js demo/);
});

test('demo --tiny: digits, every corrector, report, plots and video, offline', () => {
  const out = tempDir('driftlab-demo-');
  const r = run(['demo', '--tiny', '--out', out, '--seed', '1']);
  assert.is(r.status, 0, `exit ${r.status}: ${r.stderr.slice(-800)}`);
  if (!r.noNet) console.log('  (unshare -n unavailable: ran with the network present)');
  const [id] = fs.readdirSync(out);
  const d = path.join(out, id);
  for (const f of ['digits.png', 'report.html', 'summary.json', 'metrics.jsonl', 'plots/mse.svg', 'plots/frechet.png', 'videos/side-by-side.gif', 'demo.json']) {
    assert.ok(fs.existsSync(path.join(d, f)), `${f} missing`);
  }
  const s = JSON.parse(fs.readFileSync(path.join(d, 'summary.json'), 'utf8'));
  for (const c of ['none', 'renoise', 'kalman', 'controller']) assert.ok(s.correctors[c], `corrector ${c} in the demo`);
  assert.match(r.stdout, /\| corrector \|/);
  for (const b of ['copy-last', 'blank']) assert.ok(s.correctors[b]?.baseline, `baseline ${b} in the demo`);
  assert.match(r.stdout, /\| copy-last \(baseline\) \|/);
  assert.match(r.stdout, /tracking horizon \(traj > 8 px\)/);
  assert.match(r.stdout, /report\s+\S+report\.html/);
});

test('demo: a missing checkpoint is a one-line error', () => {
  const out = tempDir('driftlab-demo-bad-');
  const r = spawnSync(process.execPath, [cli, 'demo', '--ckpt', path.join(out, 'nope'), '--out', out], { encoding: 'utf8' });
  assert.is(r.status, 2, 'driftlab errors exit with 2');
  assert.match(r.stderr, /no video checkpoint at .*nope/);
  assert.is(r.stderr.trim().split('\n').length, 1);
});

test.run();
