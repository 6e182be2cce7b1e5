/**
 * External correctors (`--corrector ./file.mjs`, drift/external.ts): a user's module that
 * implements a built-in's rule gives the built-in's rollout byte for byte, in-process and
 * through the CLI; its file and sha256 land in run.json; a missing or malformed module is one
 * error line with nothing written; a changed module file refuses --resume.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tinyVideoPipeline } from '../helpers/video.js';
import { rejectsDriftlab, tempDir } from '../helpers/common.js';
import { rollout } from '../../src/video/rollout.js';
import { makeCorrector } from '../../src/drift/correctors/index.js';
import { correctorContext } from '../../src/drift/context.js';
import { loadCorrectorModule } from '../../src/drift/external.js';
import { Rng } from '../../src/util/rng.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(here, '..', '..', 'src', 'cli.js');
const SAMPLE_CLIP = pathToFileURL(path.resolve(here, '..', '..', 'src', 'video', 'sample-clip.js')).href;
const dir = tempDir('driftlab-external-');
const tiny = tinyVideoPipeline(dir);
const K = 3, B = 2;
const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

function writeModule(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

// SDEdit written from its equation, as a researcher would: noise the frame to t*, x_t* =
// sqrt(abar) x + sqrt(1 - abar) eps, then denoise it as the first target of a window whose
// context is the K frames before it (the earliest frame repeated while fewer exist).
const RENOISE = `
import { continueClips } from '${SAMPLE_CLIP}';
export const name = 'my-renoise';
export default function (ctx, config) {
  const tStar = config.t, steps = config.steps;
  const { frames: F, contextFrames: K, size: S, schedule } = ctx;
  const px = S * S, targets = F - K;
  return {
    name, describe: () => ({ t: tStar, steps }), reset() {},
    async correct(frame, history) {
      const past = history.recent(K);
      const context = new Float32Array(frame.n * K * px);
      for (let b = 0; b < frame.n; b++) for (let k = 0; k < K; k++) {
        const j = past.length - K + k, src = j >= 0 ? past[j] : (past[0] ?? frame);
        context.set(src.data.subarray(b * px, (b + 1) * px), (b * K + k) * px);
      }
      const abar = schedule.alphasCumprod[tStar];
      const noise = ctx.rng.normals(frame.n * targets * px);
      const xt = noise.map((e, o) => Math.sqrt(abar) * frame.data[Math.floor(o / (targets * px)) * px + (o % px)] + Math.sqrt(1 - abar) * e);
      const out = await continueClips(ctx.net, schedule, ctx.prediction, context, frame.n, K, F, S,
        { sampler: 'ddim', steps, clipX0: true, rng: ctx.rng, startFrom: { x: xt, t: tStar } });
      const data = new Float32Array(frame.n * px);
      for (let b = 0; b < frame.n; b++) data.set(out.subarray(b * targets * px, b * targets * px + px), b * px);
      return { n: frame.n, s: S, data };
    },
  };
}
`;

const IDENTITY = `
export const name = 'my-identity';
export const describe = 'passes frames through';
export default (ctx, config) => ({ name, describe: () => ({}), reset() {}, correct: (f) => ({ n: f.n, s: f.s, data: Float32Array.from(f.data) }) });
`;

async function roll(out: string, corrector: string, config: Record<string, unknown>) {
  const p = await tiny.pipeline();
  const rng = new Rng(1).fork('corrector');
  const c = makeCorrector(corrector, correctorContext(p, rng, K), config);
  await rollout({ rollouts: B, horizon: 4, context: K, chunk: 2, sampler: 'ddim', steps: 2, eta: 0, seed: 1, pipeline: p, corrector: c, out, checkpoint: tiny.ckpt, correctorRng: rng, quiet: true });
  return fs.readFileSync(path.join(out, 'frames.npy'));
}

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, DRIFTLAB_DEBUG: '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const rolloutArgs = (out: string, corrector: string, horizon = 2, ...more: string[]) => [
  'rollout', '--ckpt', tiny.ckpt, '--out', out, '--corrector', corrector, '--horizon', String(horizon), '--rollouts', '2',
  '--chunk', '2', '--steps', '2', '--engine', 'tfjs', '--backend', 'wasm', '--seed', '3', ...more,
];

/** The error contract: non-zero exit, exactly one 'driftlab: error:' line matching re, no stack. */
function expectError(r: ReturnType<typeof cli>, re: RegExp, label: string) {
  assert.ok(r.code !== 0 && r.code !== null, `${label}: exit code ${r.code}`);
  const lines = r.err.split('\n').filter((l) => l.startsWith('driftlab: '));
  const errs = lines.filter((l) => l.startsWith('driftlab: error:'));
  assert.is(errs.length, 1, `${label}: stderr: ${r.err}`);
  assert.match(errs[0], re, label);
  assert.not.match(r.err, /internal error|\n\s+at /, `${label}: not a one-line user error`);
}

test('an external module implementing SDEdit gives the built-in renoise rollout byte for byte; run.json names its file and hash', async () => {
  await tiny.pipeline();
  const file = writeModule('my-renoise.mjs', RENOISE);
  assert.is(await loadCorrectorModule(file), 'my-renoise');
  assert.is(await loadCorrectorModule(file), 'my-renoise', 'loading the same file twice registers it once');
  const cfg = { t: 300, steps: 2 };
  const builtin = await roll(path.join(dir, 'builtin'), 'renoise', cfg);
  const external = await roll(path.join(dir, 'external'), 'my-renoise', cfg);
  const plain = await roll(path.join(dir, 'plain'), 'none', {});
  assert.not.ok(builtin.equals(plain), 'renoise did not change the rollout (the comparison would see nothing)');
  assert.ok(external.equals(builtin), 'external SDEdit differs from the built-in renoise');
  const run = JSON.parse(fs.readFileSync(path.join(dir, 'external', 'run.json'), 'utf8'));
  assert.equal(run.corrector, { name: 'my-renoise', t: 300, steps: 2, source: { file, sha256: sha256(file) } });
});

test('through the CLI: an identity module equals --corrector none to the byte, and is recorded in run.json', async () => {
  await tiny.pipeline();
  const file = writeModule('identity.mjs', IDENTITY);
  const a = cli(...rolloutArgs(path.join(dir, 'cli-none'), 'none'));
  assert.is(a.code, 0, a.err);
  const b = cli(...rolloutArgs(path.join(dir, 'cli-identity'), './identity.mjs'));
  assert.is(b.code, 0, b.err);
  const frames = (d: string) => fs.readFileSync(path.join(dir, d, 'frames.npy'));
  assert.ok(frames('cli-identity').equals(frames('cli-none')), 'identity module changed the rollout');
  const run = JSON.parse(fs.readFileSync(path.join(dir, 'cli-identity', 'run.json'), 'utf8'));
  assert.equal(run.corrector, { name: 'my-identity', source: { file, sha256: sha256(file) } });
});

test('missing and malformed modules: one error line, non-zero exit, nothing written', async () => {
  await tiny.pipeline();
  const cases: [string, string | null, RegExp][] = [
    ['missing.mjs', null, /corrector module \.\/missing\.mjs not found/],
    ['no-name.mjs', 'export default () => ({ describe: () => ({}), reset() {}, correct: (f) => f });', /must export `name`.*default factory/],
    ['no-default.mjs', "export const name = 'nodefault';\nexport function create() {}", /must export `name`.*default factory/],
    ['not-a-function.mjs', "export const name = 'notfn';\nexport default 42;", /must export `name`.*default factory/],
    ['throws.mjs', "export const name = 'thrower';\nexport default () => { throw new Error('alpha must be in 0..1'); };", /corrector 'thrower' \(.*throws\.mjs\) failed to start: alpha must be in 0\.\.1/],
    ['bad-object.mjs', "export const name = 'badobj';\nexport default () => ({ name: 'badobj' });", /corrector 'badobj': its factory must return an object with describe\(\), reset\(\) and correct\(\)/],
    ['syntax.mjs', "export const name = 'syntax';\nexport default () => {", /corrector module .*syntax\.mjs failed to load: SyntaxError/],
    ['taken.mjs', "export const name = 'renoise';\nexport default () => ({});", /called 'renoise', a name already taken by a built-in; rename it/],
  ];
  // the four kinds through the real CLI (a process each); the rest in-process below
  const viaCli = new Set(['missing.mjs', 'no-name.mjs', 'no-default.mjs', 'throws.mjs']);
  const p = await tiny.pipeline();
  for (const [file, text, re] of cases) {
    if (text !== null) writeModule(file, text);
    if (viaCli.has(file)) {
      const out = path.join(dir, `bad-${file}`);
      expectError(cli(...rolloutArgs(out, `./${file}`)), re, file);
      assert.not.ok(fs.existsSync(out), `${file}: ${out} was created`);
    } else {
      await rejectsDriftlab((async () => makeCorrector(await loadCorrectorModule(path.join(dir, file)), correctorContext(p, new Rng(0), K), {}))(), re, file);
    }
  }
  // the same checks in-process, as the library's loadCorrectorModule sees them
  await rejectsDriftlab(loadCorrectorModule(path.join(dir, 'nope.mjs')), /not found/);
  await rejectsDriftlab(loadCorrectorModule(path.join(dir, 'no-default.mjs')), /must export `name`/);
  await rejectsDriftlab(loadCorrectorModule(path.join(dir, 'taken.mjs')), /already taken/);
  assert.is(await loadCorrectorModule(path.join(dir, 'throws.mjs')), 'thrower');
  try {
    makeCorrector('thrower', correctorContext(p, new Rng(0), K), {});
    assert.unreachable('factory error swallowed');
  } catch (e) {
    assert.is((e as Error).name, 'DriftlabError');
    assert.match((e as Error).message, /failed to start: alpha must be in 0\.\.1$/);
  }
});

test('--resume continues with the same module file and refuses a changed one, leaving the run untouched', async () => {
  await tiny.pipeline();
  const src = fs.readFileSync(path.resolve(here, '..', '..', '..', 'examples', 'blend-corrector.mjs'), 'utf8');
  const file = writeModule('blend.mjs', src);
  const out = path.join(dir, 'resume-blend');
  const first = cli(...rolloutArgs(out, './blend.mjs', 2, '--corrector-config', '{"alpha": 0.3}'));
  assert.is(first.code, 0, first.err);
  const same = cli(...rolloutArgs(out, './blend.mjs', 3, '--corrector-config', '{"alpha": 0.3}', '--resume'));
  assert.is(same.code, 0, `resume with the unchanged file failed: ${same.err}`);
  const run = JSON.parse(fs.readFileSync(path.join(out, 'run.json'), 'utf8'));
  assert.is(run.corrector.source.sha256, sha256(file));
  assert.is(run.horizon, 3);
  const before = fs.readdirSync(out).map((f) => [f, fs.readFileSync(path.join(out, f))] as const);
  fs.appendFileSync(file, '// edited after the run started\n');
  expectError(cli(...rolloutArgs(out, './blend.mjs', 4, '--corrector-config', '{"alpha": 0.3}', '--resume')), /holds another run/, 'changed file');
  for (const [f, bytes] of before) assert.ok(fs.readFileSync(path.join(out, f)).equals(bytes), `${f} changed by the refused resume`);
});

test('--eta outside [0, 1]: one error line from every rollout command, nothing written; the video default is eta 1', async () => {
  await tiny.pipeline();
  for (const eta of ['1.5']) { // below 0 and NaN: test/drift/study.test.ts
    const out = path.join(dir, `eta${eta}`);
    expectError(cli(...rolloutArgs(out, 'none', 2, '--eta', eta)), /--eta must be a number in \[0, 1\]/, `rollout --eta ${eta}`);
    expectError(cli('drift', '--ckpt', tiny.ckpt, '--out', out, '--correctors', 'none', '--engine', 'tfjs', '--backend', 'wasm', '--eta', eta), /--eta must be a number in \[0, 1\]/, `drift --eta ${eta}`);
    expectError(cli('sample-video', '--ckpt', tiny.ckpt, '--out', out, '--engine', 'tfjs', '--backend', 'wasm', '--eta', eta), /--eta must be a number in \[0, 1\]/, `sample-video --eta ${eta}`);
    expectError(cli('experiment', 'drift-vs-horizon', '--ckpt', tiny.ckpt, '--root', out, '--engine', 'tfjs', '--backend', 'wasm', '--eta', eta), /--eta must be a number in \[0, 1\]/, `drift-vs-horizon --eta ${eta}`);
    assert.not.ok(fs.existsSync(out), `--eta ${eta} left ${out} behind`);
  }
  const out = path.join(dir, 'eta-default');
  assert.is(cli(...rolloutArgs(out, 'none')).code, 0);
  assert.is(JSON.parse(fs.readFileSync(path.join(out, 'run.json'), 'utf8')).eta, 1);
});

test.run();
