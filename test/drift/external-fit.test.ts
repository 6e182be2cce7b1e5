/**
 * A fitted external corrector (examples/ink-match-corrector.mjs) goes the built-ins' way:
 * `driftlab fit-corrector ./file.mjs` writes its folder and driftlab's record of the fit, a
 * rollout loads it (run.json: name, settings, folder, file hash), --resume continues it to the
 * byte, `driftlab drift` loads a given folder and fits (and later reuses) its own, and foreign or
 * broken folders fail in one line.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyVideoPipeline } from '../helpers/video.js';
import { rejectsDriftlab, tempDir } from '../helpers/common.js';
import { runDriftStudy } from '../../src/drift/study.js';
import { loadCorrectorModule } from '../../src/drift/external.js';
import { FIT_MANIFEST } from '../../src/drift/fitted.js';
import { modelId } from '../../src/video/rollout.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(here, '..', '..', 'src', 'cli.js');
// the example itself, by its one path: every test file that loads it gets the same registration
const EXAMPLE = path.resolve(here, '..', '..', '..', 'examples', 'ink-match-corrector.mjs');
const dir = tempDir('driftlab-extfit-');
const tiny = tinyVideoPipeline(dir);
const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const frames = (run: string) => fs.readFileSync(path.join(run, 'frames.npy'));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, DRIFTLAB_DEBUG: '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** exit non-zero with exactly one 'driftlab: error:' line matching re and no stack */
function expectError(r: ReturnType<typeof cli>, re: RegExp, label: string) {
  assert.ok(r.code !== 0 && r.code !== null, `${label}: exit code ${r.code}`);
  const errs = r.err.split('\n').filter((l) => l.startsWith('driftlab: error:'));
  assert.is(errs.length, 1, `${label}: stderr: ${r.err}`);
  assert.match(errs[0], re, label);
  assert.not.match(r.err, /internal error|\n\s+at /, `${label}: not a one-line user error`);
}

const withCkpt = () => ['--ckpt', tiny.ckpt, '--engine', 'tfjs', '--backend', 'wasm', '--seed', '4'];
const rolloutArgs = (out: string, config: string, horizon: number, ...more: string[]) => [
  'rollout', ...withCkpt(), '--out', out, '--corrector', EXAMPLE, '--corrector-config', config,
  '--horizon', String(horizon), '--rollouts', '2', '--chunk', '2', '--steps', '2', ...more,
];

let fitted = '';

test.before(async () => {
  await tiny.pipeline();
  fitted = path.join(dir, 'fitted-ink');
  const r = cli('fit-corrector', EXAMPLE, ...withCkpt(), '--out', fitted, '--clips', '3', '--frames', '4');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /fitted ink-match on 3 clips x 4 frames/);
});

test('fit-corrector ./file.mjs writes the module\'s folder and driftlab\'s record of the fit', async () => {
  const p = await tiny.pipeline();
  const saved = JSON.parse(fs.readFileSync(path.join(fitted, 'ink-match.json'), 'utf8'));
  assert.is(saved.modelId, modelId(p));
  assert.is(saved.quantiles.length, 64);
  // the quantiles are real frames' values: background -1 is the lowest, and they never decrease
  assert.is(saved.quantiles[0], -1);
  assert.ok(saved.quantiles.every((q: number, i: number) => i === 0 || q >= saved.quantiles[i - 1]), 'quantiles not sorted');
  assert.ok(saved.quantiles[63] > 0, 'no ink among the fitted values');
  const rec = JSON.parse(fs.readFileSync(path.join(fitted, FIT_MANIFEST), 'utf8'));
  assert.equal(rec, {
    format: 'driftlab-corrector-fit-1', corrector: 'ink-match', modelId: modelId(p), source: { file: EXAMPLE, sha256: sha256(EXAMPLE) },
    settings: { strength: 0.5, levels: 64 }, clips: { m: 3, t: 4 }, seed: 4,
  });
  // same seed, same bytes
  const again = path.join(dir, 'fitted-again');
  const r = cli('fit-corrector', EXAMPLE, ...withCkpt(), '--out', again, '--clips', '3', '--frames', '4');
  assert.is(r.code, 0, r.err);
  for (const f of ['ink-match.json', FIT_MANIFEST]) assert.ok(fs.readFileSync(path.join(again, f)).equals(fs.readFileSync(path.join(fitted, f))), `${f} differs between two fits`);
});

test('a rollout loads the folder, run.json records name, settings, folder and file hash, and --resume continues to the byte', async () => {
  const cfg = JSON.stringify({ dir: fitted, strength: 0.8 });
  const whole = path.join(dir, 'ink-whole'), cut = path.join(dir, 'ink-cut'), none = path.join(dir, 'ink-none');
  let r = cli(...rolloutArgs(whole, cfg, 4));
  assert.is(r.code, 0, r.err);
  const run = JSON.parse(fs.readFileSync(path.join(whole, 'run.json'), 'utf8'));
  assert.equal(run.corrector, { name: 'ink-match', strength: 0.8, levels: 64, dir: fitted, source: { file: EXAMPLE, sha256: sha256(EXAMPLE) } });
  r = cli(...rolloutArgs(cut, cfg, 2));
  assert.is(r.code, 0, r.err);
  r = cli(...rolloutArgs(cut, cfg, 4, '--resume'));
  assert.is(r.code, 0, r.err);
  assert.ok(frames(cut).equals(frames(whole)), 'a resumed rollout differs from the uninterrupted one');
  // strength 0 is the plain sampler to the byte; strength 0.8 is not (the comparison above sees the corrector)
  r = cli(...rolloutArgs(none, JSON.stringify({ dir: fitted, strength: 0 }), 4));
  assert.is(r.code, 0, r.err);
  const plain = path.join(dir, 'plain');
  r = cli('rollout', ...withCkpt(), '--out', plain, '--corrector', 'none', '--horizon', '4', '--rollouts', '2', '--chunk', '2', '--steps', '2');
  assert.is(r.code, 0, r.err);
  assert.ok(frames(none).equals(frames(plain)), 'strength 0 changed the rollout');
  assert.not.ok(frames(whole).equals(frames(plain)), 'strength 0.8 left the rollout as it was');
});

test('broken and foreign folders, and an unfitted corrector: one error line, nothing written', async () => {
  const p = await tiny.pipeline();
  const foreign = path.join(dir, 'foreign');
  fs.cpSync(fitted, foreign, { recursive: true });
  const rec = JSON.parse(fs.readFileSync(path.join(foreign, FIT_MANIFEST), 'utf8'));
  fs.writeFileSync(path.join(foreign, FIT_MANIFEST), JSON.stringify({ ...rec, modelId: '0123456789abcdef' }));
  const cases: [string, string, RegExp][] = [
    ['unfitted', '{"strength": 0.5}', /corrector 'ink-match' \(.*ink-match-corrector\.mjs\) failed in reset\(\): ink-match is not fitted/],
    ['foreign', JSON.stringify({ dir: foreign }), new RegExp(`'ink-match' was fitted for model 0123456789abcdef, this checkpoint is ${modelId(p)}; fit it again`)],
    ['missing', JSON.stringify({ dir: path.join(dir, 'nope') }), /fitted folder .*nope of corrector 'ink-match' does not exist/],
  ];
  for (const [label, cfg, re] of cases) {
    const out = path.join(dir, `bad-${label}`);
    expectError(cli(...rolloutArgs(out, cfg, 2)), re, label);
    assert.not.ok(fs.existsSync(out), `${label}: ${out} was created`);
  }
  // the module's own check in load() (a folder without driftlab's record, e.g. copied by hand)
  const bare = path.join(dir, 'bare');
  fs.cpSync(fitted, bare, { recursive: true });
  fs.rmSync(path.join(bare, FIT_MANIFEST));
  const saved = JSON.parse(fs.readFileSync(path.join(bare, 'ink-match.json'), 'utf8'));
  fs.writeFileSync(path.join(bare, 'ink-match.json'), JSON.stringify({ ...saved, quantiles: saved.quantiles.slice(0, 8) }));
  expectError(cli(...rolloutArgs(path.join(dir, 'bad-bare'), JSON.stringify({ dir: bare }), 2)), /failed in load\(\): .*bare holds 8 levels, the config asks for 64/, 'bare');
  // fit-corrector on a module that cannot be fitted
  expectError(cli('fit-corrector', path.resolve(here, '..', '..', '..', 'examples', 'blend-corrector.mjs'), ...withCkpt(), '--out', path.join(dir, 'fit-blend')), /corrector 'blend' has nothing to fit/, 'blend');
  assert.not.ok(fs.existsSync(path.join(dir, 'fit-blend')));
});

test('driftlab drift: a given folder is loaded; without one the study fits its own, saves it, and a later study reuses it', async () => {
  await tiny.pipeline();
  const name = await loadCorrectorModule(EXAMPLE);
  assert.is(name, 'ink-match');
  const o = {
    ckpt: tiny.ckpt, horizon: 4, rollouts: 2, chunk: 2, steps: 2, seed: 4, engine: 'tfjs' as const, quiet: true,
    fitClips: 3, fitFrames: 4, refFrames: 32, refClips: 8, fvdHorizons: [0], frechetBin: 2, videoFrames: 6, mp4: false, baselines: false,
  };
  // the folder from fit-corrector: the study's rollout is the CLI rollout above (same seed, same settings)
  const given = path.join(dir, 'study-given');
  const a = await runDriftStudy({ ...o, out: given, correctors: ['none', name], correctorConfig: { [name]: { dir: fitted, strength: 0.8 } } });
  assert.ok(frames(path.join(given, 'rollouts', name)).equals(frames(path.join(dir, 'ink-whole'))), 'drift and rollout differ with the same fitted folder');
  assert.not.ok(fs.existsSync(path.join(given, 'correctors')), 'fitted again although a folder was given');
  assert.ok(a.summary && JSON.stringify(a.summary).includes(name), 'ink-match missing from the summary');
  // no folder: fitted here on fitClips x fitFrames real clips with the study's seed (what fit-corrector does with the same numbers)
  const own = path.join(dir, 'study-own');
  await runDriftStudy({ ...o, out: own, correctors: [name], correctorConfig: { [name]: { strength: 0.8 } } });
  const fit = path.join(own, 'correctors', name);
  assert.ok(fs.readFileSync(path.join(fit, 'ink-match.json')).equals(fs.readFileSync(path.join(fitted, 'ink-match.json'))), 'the study fitted other quantiles');
  assert.is(JSON.parse(fs.readFileSync(path.join(fit, FIT_MANIFEST), 'utf8')).corrector, name);
  const run = JSON.parse(fs.readFileSync(path.join(own, 'rollouts', name, 'run.json'), 'utf8'));
  assert.is(run.corrector.dir, fit);
  assert.is(run.corrector.source.sha256, sha256(EXAMPLE));
  // a study killed before its rollout finished resumes with the fit it saved (no second fit: the folder is left as it was)
  fs.rmSync(path.join(own, 'rollouts', name, 'timing.json'));
  const stamp = fs.statSync(path.join(fit, 'ink-match.json')).mtimeMs;
  const logs: string[] = [];
  await runDriftStudy({ ...o, out: own, resume: true, quiet: false, log: (l) => logs.push(l), correctors: [name], correctorConfig: { [name]: { strength: 0.8 } } });
  assert.not.ok(logs.some((l) => /fitting ink-match/.test(l)), `fitted again on resume: ${logs.join(' | ')}`);
  assert.is(fs.statSync(path.join(fit, 'ink-match.json')).mtimeMs, stamp);
  // settings keyed by the module's file instead of its name are refused, not dropped
  await rejectsDriftlab(runDriftStudy({ ...o, out: path.join(dir, 'study-bad'), correctors: [name], correctorConfig: { './ink-match-corrector.mjs': { strength: 0.8 } } }),
    /--corrector-config has settings for '\.\/ink-match-corrector\.mjs', which is not among the correctors \(ink-match\); .*exported name/);
});

test.run();
