/**
 * driftlab from outside: `import { ... } from 'driftlab'` in JS and in strict TypeScript, then the
 * real thing: `npm pack`, `npm install` of the tarball into a fresh project with no network, and
 * the examples/ scripts and the CLI from that install (a tiny model trained a few steps, clips
 * continued, a rollout with the example corrector files, metrics against ground truth).
 *
 * The quick test links the package folder into a temporary project's node_modules (what npm does
 * for `npm link`), so resolution goes through package.json `exports` exactly as for an installed
 * copy. The install test needs the npm cache to hold driftlab's dependencies, as it does wherever
 * `npm ci` ran (.ci/run does). It pins them with driftlab's own package-lock.json plus each
 * tarball's registry URL, so npm reads tarballs straight from the cache and nothing else; it
 * scrubs npm's and onnxruntime's settings from the environment (a consumer has no .npmrc), points
 * every proxy at a closed port and, where the kernel allows, runs npm and the CLI in a network
 * namespace of their own, so no install script can reach a network either. The install unpacks
 * ~700 MB (tfjs, onnxruntime-node) for about 20 s of CPU: well under a minute on an idle 2-core
 * machine, several minutes on one that is busy training.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/common.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** What issue 15 asks the public API to offer, by kind. */
const FUNCTIONS = [
  'makeSchedule', 'addNoise', 'step', 'ddimStep', 'ddpmStep', 'sample', // schedules and sampler steps
  'getPreset', 'getVideoPreset', 'train', 'trainVideo', 'loadCheckpoint', // models and configs
  'loadPipeline', 'generate', 'continueClips', 'rollout', // pipelines and rollouts
  'registerCorrector', 'makeCorrector', 'listCorrectors', 'chain', 'loadCorrectorModule', 'correctorContext', // correctors
  'frameMetrics', 'ssim', 'frechetDistance', 'frechetFrameCurve', 'fvdAtHorizons', 'loadFeatureNet', 'trajectoryError', 'runFrameMetrics', // metrics
  'loadBundledMnist', 'MovingMnist', 'MnistBatches', 'UNetModel', 'initBackend', 'Rng', 'DriftlabError',
];
const BUILTINS = ['none', 'context-noise', 'renoise', 'kalman', 'controller', 'history-guidance', 'reconstruction-guidance', 'anchor'];

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status, out: r.stdout ?? '', err: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

/** A fresh consumer project: package.json only (no .npmrc), ESM. */
function project(prefix: string): string {
  const app = tempDir(prefix);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }, null, 2));
  return app;
}

const CHECK_JS = `
import * as dl from 'driftlab';
const missing = ${JSON.stringify(FUNCTIONS)}.filter((k) => typeof dl[k] !== 'function');
const s = dl.makeSchedule({ timesteps: 10 });
// a perfect eps-prediction: x_t = addNoise(x0, eps, t), out = eps; one DDIM step to the end must give x0
await dl.initBackend('cpu', { quiet: true });
const x0 = Float32Array.from({ length: 8 }, (_, i) => i / 4 - 1), eps = Float32Array.from({ length: 8 }, (_, i) => Math.cos(i));
const xt = dl.addNoise(s, x0, eps, new Array(8).fill(7));
const r = dl.step(s, 'epsilon', dl.tf.tensor4d(eps, [2, 2, 2, 1]), dl.tf.tensor4d(xt, [2, 2, 2, 1]), 7, -1);
const prev = Array.from(r.prev.dataSync()), predX0 = Array.from(r.predX0.dataSync());
console.log(JSON.stringify({ missing, correctors: dl.listCorrectors().map((c) => c.name), T: s.T, abar9: s.alphasCumprod[9], internal: 'unetForward' in dl,
  stepErr: Math.max(...prev.map((v, i) => Math.abs(v - x0[i])), ...predX0.map((v, i) => Math.abs(v - x0[i]))) }));
`;

// strict TypeScript against the published .d.ts: a corrector written and registered by a user
const CHECK_TS = `
import { registerCorrector, makeSchedule, type DriftCorrector, type CorrectorFactory, type FrameBatch, type Schedule } from 'driftlab';
const s: Schedule = makeSchedule({ kind: 'cosine', timesteps: 50 });
const make: CorrectorFactory = (ctx, config) => {
  const alpha = Number(config.alpha ?? 0.5);
  const c: DriftCorrector = {
    name: 'half', describe: () => ({ alpha }), reset: () => undefined,
    correct: (f: FrameBatch, h) => ({ ...f, data: f.data.map((v, i) => (1 - alpha) * v + alpha * (h.recent(1)[0]?.data[i] ?? v)) }),
  };
  return c;
};
registerCorrector('half', 'halfway to the previous frame', make);
const n: number = s.T;
// @ts-expect-error internal modules are not part of the API
import('driftlab/dist/src/diffusion/unet.js');
export { n };
`;

function typecheck(app: string) {
  fs.writeFileSync(path.join(app, 'check.ts'), CHECK_TS);
  fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: [] },
    files: ['check.ts'],
  }));
  const r = run(process.execPath, [TSC, '-p', app], app);
  assert.is(r.code, 0, `tsc on a consumer's file failed:\n${r.out}${r.err}`);
}

function checkImports(app: string) {
  fs.writeFileSync(path.join(app, 'check.mjs'), CHECK_JS);
  const r = run(process.execPath, ['check.mjs'], app);
  assert.is(r.code, 0, r.err);
  const got = JSON.parse(r.out.trim().split('\n').pop()!);
  assert.equal(got.missing, [], `not exported: ${got.missing}`);
  for (const c of BUILTINS) assert.ok(got.correctors.includes(c), `built-in ${c} not registered on import`);
  assert.is(got.T, 10);
  // linear schedule, 10 steps from the defaults: abar_9 = prod (1 - beta_t), computed here
  let abar = 1;
  for (let t = 0; t < 10; t++) abar *= 1 - (1e-4 + ((0.02 - 1e-4) * t) / 9);
  assert.ok(Math.abs(got.abar9 - abar) < 1e-12, `abar_9 ${got.abar9} vs ${abar}`);
  assert.is(got.internal, false, 'an internal function leaked into the public entry');
  assert.ok(got.stepErr < 1e-5, `step() with the true eps does not land on x0: error ${got.stepErr}`);
}

/** examples/library-tour.mjs from the package as installed in app: train, continue, roll out, score. */
function tour(app: string, pkgDir: string) {
  const out = path.join(app, 'tour');
  const r = run(process.execPath, [path.join(pkgDir, 'examples', 'library-tour.mjs'), out, '--steps', '2'], app);
  assert.is(r.code, 0, `library-tour failed:\n${r.err}`);
  const got = JSON.parse(r.out.trim().split('\n').pop()!);
  assert.is(got.corrector, 'blend');
  assert.is(got.frames, 3 + 6);
  assert.is(got.rollouts, 2);
  for (const k of ['mseLast', 'ssimLast', 'trajLast']) assert.ok(Number.isFinite(got[k]), `${k} = ${got[k]}`);
  assert.ok(got.frechetFrames.length === 3 && got.frechetFrames.every((v: number) => v >= 0), `frechet ${got.frechetFrames}`);
  // the example's own rollout files, scored here independently: MSE of the last frame
  const fr = fs.readFileSync(path.join(out, 'rollout', 'frames.npy')), tr = fs.readFileSync(path.join(out, 'rollout', 'truth.npy'));
  const P = 2 * 16 * 16, a = fr.subarray(fr.length - P), b = tr.subarray(tr.length - P);
  let m0 = 0, m1 = 0;
  for (let i = 0; i < P; i++) (i < P / 2 ? (m0 += ((a[i] - b[i]) / 255) ** 2) : (m1 += ((a[i] - b[i]) / 255) ** 2));
  const mse = (m0 / (P / 2) + m1 / (P / 2)) / 2;
  assert.ok(Math.abs(got.mseLast - mse) < 1e-9, `example reports MSE ${got.mseLast}, the files give ${mse}`);
}

test('package.json exports point at built files, and pack ships them (not the tests)', () => {
  const e = pkg.exports['.'];
  for (const f of [e.types, e.import, pkg.types, pkg.main, pkg.bin.driftlab]) assert.ok(fs.existsSync(path.join(ROOT, f)), `${f} missing`);
  for (const f of pkg.files) assert.not.ok(/test|bench/.test(f), `files ships ${f}`);
  assert.ok(pkg.optionalDependencies['onnxruntime-node'] && !pkg.dependencies['onnxruntime-node'], 'onnxruntime-node must stay optional (offline installs)');
});

test("a consumer project that links the package imports 'driftlab' in JS and strict TypeScript", () => {
  const app = project('driftlab-consumer-');
  fs.mkdirSync(path.join(app, 'node_modules'));
  fs.symlinkSync(ROOT, path.join(app, 'node_modules', 'driftlab'), 'dir');
  checkImports(app);
  typecheck(app);
});

/** npm's own settings as this project sees them (before the consumer's environment is scrubbed). */
function npmConfig(key: string): string {
  const r = run('npm', ['config', 'get', key], ROOT);
  const v = r.out.trim().split('\n').pop() ?? '';
  assert.ok(r.code === 0 && v && v !== 'undefined', `npm config get ${key} failed: ${r.err}`);
  return v;
}

/**
 * A lockfile for the consumer: the tarball plus driftlab's own locked (non-dev) dependency tree,
 * each entry with the tarball URL on the registry npm ci used. driftlab's lock records integrity
 * but no `resolved`: without it npm reads and parses every package's packument (~260 of them)
 * just to find each tarball's address, most of the install's time. With both, npm takes every
 * tarball straight from its cache by URL and checks it against the locked integrity.
 */
function consumerLock(app: string, tgz: string, registry: string) {
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  const spec = `file:${path.relative(app, tgz)}`;
  const packages: Record<string, unknown> = {
    '': { name: 'consumer', version: '1.0.0', dependencies: { driftlab: spec } },
    'node_modules/driftlab': {
      version: pkg.version, resolved: spec, integrity: `sha512-${createHash('sha512').update(fs.readFileSync(tgz)).digest('base64')}`,
      license: pkg.license, dependencies: pkg.dependencies, optionalDependencies: pkg.optionalDependencies, bin: pkg.bin, engines: pkg.engines,
    },
  };
  const reg = registry.replace(/\/?$/, '/');
  for (const [k, v] of Object.entries(lock.packages as Record<string, any>)) {
    if (!k || v.dev) continue;
    const name: string = v.name ?? k.slice(k.lastIndexOf('node_modules/') + 'node_modules/'.length);
    packages[k] = v.resolved || v.link ? v : { ...v, resolved: `${reg}${name}/-/${name.split('/').pop()}-${v.version}.tgz` };
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(app, 'package.json'), 'utf8'));
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ ...manifest, dependencies: { driftlab: spec } }, null, 2));
  fs.writeFileSync(path.join(app, 'package-lock.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2));
}

/** This process's environment without npm's or onnxruntime's settings (a consumer has none) and with no reachable proxy. */
function offlineEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|onnxruntime_node)/i.test(k)) env[k] = v;
  const dead = 'http://127.0.0.1:9';
  return { ...env, HTTP_PROXY: dead, HTTPS_PROXY: dead, http_proxy: dead, https_proxy: dead, GLOBAL_AGENT_HTTP_PROXY: dead, GLOBAL_AGENT_HTTPS_PROXY: dead, NO_PROXY: '' };
}

/** cmd with no network at all where the kernel allows it (a network namespace of its own), else as is (the proxies are dead anyway). */
const NO_NET = spawnSync('unshare', ['-n', 'true']).status === 0;
const offline = (cmd: string, args: string[]): [string, string[]] => (NO_NET ? ['unshare', ['-n', cmd, ...args]] : [cmd, args]);

test('npm pack, npm install --offline into a fresh project (no .npmrc), then the examples and the CLI from that install', () => {
  const t0 = Date.now();
  const registry = npmConfig('registry'), cache = npmConfig('cache');
  const work = tempDir('driftlab-pack-');
  const packed = run('npm', ['pack', '--ignore-scripts', '--pack-destination', work], ROOT);
  assert.is(packed.code, 0, packed.err);
  const tgz = path.join(work, packed.out.trim().split('\n').pop()!);
  const app = path.join(work, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  consumerLock(app, tgz, registry);
  const env = offlineEnv();
  // the whole tree, optional dependencies and install scripts included, as a consumer's npm install runs it
  const inst = run(...offline('npm', ['install', '--offline', '--no-audit', '--no-fund', '--cache', cache]), app, env);
  assert.is(inst.code, 0, `offline install failed (the npm cache at ${cache} must hold driftlab's dependencies, as it does after npm ci):\n${inst.err}`);
  const installed = path.join(app, 'node_modules', 'driftlab');
  assert.ok(fs.existsSync(path.join(installed, 'dist', 'src', 'index.js')));
  assert.not.ok(fs.existsSync(path.join(installed, 'dist', 'test')), 'tests shipped');
  const tInstall = Date.now();
  checkImports(app);
  typecheck(app);
  tour(app, installed);
  // the CLI from the install: fit the example's fitted corrector, then roll out with both example corrector files chained
  const bin = path.join(app, 'node_modules', '.bin', 'driftlab'), ckpt = path.join(app, 'tour', 'model');
  const ex = (f: string) => `./node_modules/driftlab/examples/${f}`;
  const fit = run(...offline(bin, ['fit-corrector', ex('ink-match-corrector.mjs'), '--ckpt', ckpt, '--out', 'ink', '--clips', '3', '--frames', '4', '--engine', 'tfjs']), app, env);
  assert.is(fit.code, 0, fit.err);
  const cli = run(...offline(bin, ['rollout', '--ckpt', ckpt, '--out', 'cli-run', '--corrector', `${ex('blend-corrector.mjs')},${ex('ink-match-corrector.mjs')}`,
    '--corrector-config', '{"blend": {"alpha": 0.3}, "ink-match": {"dir": "ink"}}', '--horizon', '2', '--rollouts', '1', '--steps', '2']), app, env);
  assert.is(cli.code, 0, cli.err);
  const runJson = JSON.parse(fs.readFileSync(path.join(app, 'cli-run', 'run.json'), 'utf8'));
  assert.is(runJson.corrector.name, 'blend,ink-match');
  assert.equal(runJson.corrector.chain.map((c: any) => [c.name, c.source.file]), [
    ['blend', path.join(installed, 'examples', 'blend-corrector.mjs')], ['ink-match', path.join(installed, 'examples', 'ink-match-corrector.mjs')],
  ]);
  assert.is(runJson.corrector.chain[1].dir, 'ink');
  // offline, onnxruntime-node's postinstall cannot fetch its CUDA libraries, so npm drops the optional package
  if (!fs.existsSync(path.join(app, 'node_modules', 'onnxruntime-node'))) assert.match(cli.err, /onnx engine unavailable, using tfjs: onnxruntime-node is not installed/);
  else assert.match(cli.err, /engine onnxruntime-node/);
  process.stderr.write(`  pack + offline install ${((tInstall - t0) / 1000).toFixed(0)} s, examples and CLI ${((Date.now() - tInstall) / 1000).toFixed(0)} s${NO_NET ? ' (npm and the CLI in a network namespace with no network)' : ''}\n`);
});

test.run();
