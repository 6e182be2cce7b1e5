/**
 * Issue #14: `driftlab export --quantize dynamic|static --verify` and `driftlab serve --onnx FILE`
 * print exactly one line naming the int8 scheme and the CPU features onnxruntime's kernels use,
 * through the real CLI on a tiny checkpoint (mnist-tiny, random weights).
 *
 *   - on this machine the line is int8Line(mode, 'reduce-range', cpuInt8()): /proc/cpuinfo and
 *     onnxruntime's own check (probeU8S8Saturation) agree on an unmasked CPU;
 *   - under scripts/cpu-mask/run.sh avx2 (CPUID says AVX2 only, /proc/cpuinfo still lists what
 *     the CPU has) the line reports no VNNI, because it follows what onnxruntime's u8s8 kernel
 *     does, and the int8 file still verifies. Where the shim cannot run (not x86-64 Linux, no
 *     CPUID faulting, no C compiler) that half is skipped with a printed note; any other failure
 *     of the masked command fails the test.
 *
 * Each command runs unmasked and masked at the same time (separate processes).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHECKPOINT_FORMAT, saveCheckpoint } from '../../src/diffusion/checkpoint.js';
import { flatLayout, joinFlat } from '../../src/diffusion/model.js';
import { DEFAULT_OBJECTIVE } from '../../src/diffusion/objective.js';
import { getPreset } from '../../src/diffusion/presets.js';
import { DEFAULT_SCHEDULE } from '../../src/diffusion/schedule.js';
import { unetParamSpecs } from '../../src/diffusion/unet.js';
import { cpuInt8, int8Line, measuredCpuInt8 } from '../../src/engine/int8-scheme.js';
import { loadOrt, probeU8S8Saturation } from '../../src/engine/onnx-engine.js';
import { tempDir } from '../helpers/common.js';
import { once, randomParams, requireOrt } from './helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');
const MASK = path.join(ROOT, 'scripts', 'cpu-mask', 'run.sh');
const TINY = getPreset('mnist-tiny').model;
const tmp = tempDir('driftlab-int8-line-');
const ckpt = path.join(tmp, 'tiny');

/** null when the shim runs here; else why not (printed, and the masked checks are skipped) */
let maskUnavailable: string | null = null;
const ready = once(async () => {
  await requireOrt();
  const params = joinFlat(flatLayout(unetParamSpecs(TINY)), randomParams(TINY, 31));
  await saveCheckpoint(ckpt, { config: { format: CHECKPOINT_FORMAT, model: TINY, schedule: { ...DEFAULT_SCHEDULE }, objective: { ...DEFAULT_OBJECTIVE } }, params, ema: params });
  // run.sh exits 2 with a 'cpu-mask:' / 'cpumask:' line before running anything when it cannot
  // emulate; a missing C compiler shows as the compiler's own error while building the shim
  const r = spawnSync('bash', [MASK, 'avx2', 'true'], { encoding: 'utf8' });
  if (r.status !== 0) {
    const why = r.stderr.trim().split('\n').pop() ?? '';
    const cannot = /^cpu-?mask: /.test(why) || /\b(cc|gcc|clang)\b.*(not found|No such file)/.test(r.stderr);
    assert.ok(cannot, `scripts/cpu-mask/run.sh avx2 true failed for another reason (exit ${r.status}): ${r.stderr}`);
    maskUnavailable = why;
    console.log(`\n  note: CPU-mask checks skipped, the shim cannot run here (${why})`);
  }
});

interface Run { code: number | null; out: string; err: string }
function run(masked: boolean, args: string[]): Promise<Run> {
  const cmd = masked ? ['bash', [MASK, 'avx2', process.execPath, CLI, ...args]] as const : [process.execPath, [CLI, ...args]] as const;
  return new Promise((resolve) => {
    const c = spawn(cmd[0], [...cmd[1]], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { err += d; });
    c.once('close', (code) => resolve({ code, out, err }));
  });
}

/** the lines of stdout and stderr that name an int8 scheme */
const schemeLines = (r: { out: string; err: string }) => `${r.out}\n${r.err}`.split('\n').filter((l) => /\bscheme\b/.test(l));

/** What the line must say on this machine: the /proc/cpuinfo reading, which onnxruntime's check confirms here. */
async function expectedHere(mode: string): Promise<string> {
  const cpu = cpuInt8();
  const saturates = await probeU8S8Saturation((await loadOrt()).ort!);
  assert.ok(saturates !== null, 'onnxruntime answers the u8s8 check');
  if (cpu.kernel !== 'unknown') {
    assert.is(saturates, cpu.saturatesFullRange, `onnxruntime's u8s8 kernel ${saturates ? 'saturates' : 'is exact'} but /proc/cpuinfo says ${cpu.what}`);
    return int8Line(mode, 'reduce-range', cpu);
  }
  return int8Line(mode, 'reduce-range', measuredCpuInt8(cpu, saturates)); // darwin x64 and the like: no flags to read
}

/** the masked line: scheme reduce-range, no VNNI, int16 pair sums, cannot saturate */
function assertNoVnni(line: string, mode: string): void {
  assert.match(line, new RegExp(`^int8 ${mode}, scheme reduce-range \\(`));
  const kernels = line.slice(line.indexOf('onnxruntime uses '));
  assert.match(kernels, /^onnxruntime uses u8s8 kernels with (AVX2 vpmaddubsw|AVX-512BW vpmaddubsw|vpmaddubsw) \(int16 pair sums/, line);
  assert.not.match(kernels, /VNNI \(int32/, line);
  if (cpuInt8().kernel === 'vnni') assert.match(line, /but onnxruntime sees no VNNI/, 'cpuinfo lists VNNI, the line must say onnxruntime does not use it');
  assert.match(line, /: cannot saturate$/);
}

for (const mode of ['dynamic', 'static'] as const) {
  test(`export --quantize ${mode} --verify prints one scheme line: this CPU's; under cpu-mask avx2, no VNNI, and it still verifies`, async () => {
    await ready();
    const args = (out: string) => ['export', '--ckpt', ckpt, '--out', path.join(tmp, out), '--quantize', mode, '--calib-samples', '16', '--verify'];
    const [plain, masked] = await Promise.all([run(false, args(`${mode}.onnx`)), maskUnavailable ? null : run(true, args(`${mode}-masked.onnx`))]);
    assert.is(plain.code, 0, plain.err);
    const lines = schemeLines(plain);
    assert.is(lines.length, 1, `one scheme line, got:\n${lines.join('\n')}`);
    assert.is(lines[0], await expectedHere(mode));
    const out = plain.out.split('\n');
    assert.ok(out.indexOf(lines[0]) >= 0 && out.indexOf(lines[0]) < out.findIndex((l) => l.startsWith(`verified (${mode})`)), 'on stdout, before the verdict');
    if (!masked) return;
    assert.is(masked.code, 0, `masked: ${masked.err}`);
    const m = schemeLines(masked);
    assert.is(m.length, 1, `masked: one scheme line, got:\n${m.join('\n')}`);
    assertNoVnni(m[0], mode);
    assert.match(masked.out, new RegExp(`^verified \\(${mode}\\): .* rms [\\d.]+% `, 'm'));
  });
}

/** start `serve --onnx FILE` on a free port; resolves with everything it printed up to its URL line, then kills it */
function serveStartup(masked: boolean, file: string): Promise<Run> {
  const args = ['serve', '--ckpt', ckpt, '--onnx', file, '--port', '0', '--quiet', '--backend', 'wasm', '--threads', '1'];
  const cmd = masked ? ['bash', [MASK, 'avx2', process.execPath, CLI, ...args]] as const : [process.execPath, [CLI, ...args]] as const;
  return new Promise((resolve) => {
    const c: ChildProcess = spawn(cmd[0], [...cmd[1]], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '', done = false;
    const finish = (code: number | null) => { if (!done) { done = true; c.kill('SIGKILL'); resolve({ code, out, err }); } };
    const timer = setTimeout(() => { err += '\n(no URL line within 60 s)'; finish(null); }, 60_000);
    c.stdout!.on('data', (d) => { out += d; if (/^driftlab serve: http:\/\/[\d.]+:\d+ /m.test(out)) { clearTimeout(timer); finish(0); } });
    c.stderr!.on('data', (d) => { err += d; });
    c.once('exit', (code) => { clearTimeout(timer); finish(code ?? -1); });
  });
}

test('serve --onnx FILE prints one scheme line before its URL: this CPU\'s; under cpu-mask avx2, no VNNI', async () => {
  await ready();
  const file = path.join(tmp, 'serve.onnx');
  const e = await run(false, ['export', '--ckpt', ckpt, '--out', file, '--quantize', 'dynamic']);
  assert.is(e.code, 0, e.err);
  assert.is(schemeLines(e).length, 0, 'export without --verify runs no onnxruntime and prints no scheme line');
  const [plain, masked] = await Promise.all([serveStartup(false, file), maskUnavailable ? null : serveStartup(true, file)]);
  for (const [what, r] of [['plain', plain], ['masked', masked]] as const) {
    if (!r) continue;
    assert.is(r.code, 0, `${what}: serve did not start: ${r.err}`);
    const lines = schemeLines(r);
    assert.is(lines.length, 1, `${what}: one scheme line, got:\n${lines.join('\n')}`);
    assert.ok(r.out.startsWith(`${lines[0]}\n`), `${what}: the scheme line comes first on stdout:\n${r.out}`);
    assert.match(lines[0], /^driftlab serve: int8 /);
    const line = lines[0].replace(/^driftlab serve: /, '');
    if (what === 'plain') assert.is(line, await expectedHere('dynamic'));
    else assertNoVnni(line, 'dynamic');
    assert.match(r.out, /driftlab serve: http:\/\/127\.0\.0\.1:\d+ \(POST \/generate, GET \/healthz\) on onnxruntime\n/);
  }
});

test.run();
