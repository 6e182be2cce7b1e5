import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Progress, formatDuration, formatValue } from '../../src/util/progress.js';

test('formatDuration', () => {
  assert.is(formatDuration(0), '0.0s');
  assert.is(formatDuration(12.34), '12.3s');
  assert.is(formatDuration(59.9), '59.9s');
  assert.is(formatDuration(60), '1m00s');
  assert.is(formatDuration(185), '3m05s');
  assert.is(formatDuration(3599), '59m59s');
  assert.is(formatDuration(3600 + 125), '1h02m');
  assert.is(formatDuration(26 * 3600), '26h00m');
  assert.is(formatDuration(NaN), '?');
  assert.is(formatDuration(Infinity), '?');
});

test('formatValue', () => {
  assert.is(formatValue(0.031234), '0.03123');
  assert.is(formatValue(42), '42');
  assert.is(formatValue(1.5e-7), '1.5e-7');
  assert.is(formatValue('abc'), 'abc');
});

function fakeStream(isTTY: boolean) {
  const out: string[] = [];
  return { out, stream: { isTTY, write: (s: string) => (out.push(s), true) } };
}

test('non-TTY: roughly every 10% plus final line', () => {
  const { out, stream } = fakeStream(false);
  let now = 0;
  const p = new Progress({ total: 1000, label: 'train', stream, unit: 'img', now: () => now });
  for (let i = 0; i < 1000; i++) {
    now += 10; // 100 img/s
    p.tick(1, { loss: 0.0312 });
  }
  p.done(); // idempotent after auto-finish
  assert.ok(out.length >= 10 && out.length <= 12, `lines: ${out.length}`);
  assert.ok(out.every((l) => l.endsWith('\n') && !l.includes('\r')));
  const mid = out.find((l) => l.includes(' 50% '))!;
  assert.ok(mid, 'has a 50% line');
  assert.match(mid, /^train \[##########\.{10}\]  50% 500\/1000 loss=0.0312 100 img\/s ETA 5.0s\n$/);
  assert.match(out[out.length - 1]!, /^train \[#{20}\] 100% 1000\/1000 loss=0.0312 100 img\/s in 10.0s\n$/);
});

test('a resumed job: the bar starts at `initial`, the rate and ETA count only this process', () => {
  const { out, stream } = fakeStream(false);
  let now = 0;
  const p = new Progress({ total: 1000, label: 'train', stream, unit: 'step', initial: 600, now: () => now });
  for (let i = 0; i < 400; i++) {
    now += 100; // 10 step/s since the resume
    p.tick(1);
  }
  const mid = out.find((l) => l.includes(' 80% '))!;
  assert.ok(mid, `an 80% line: ${out.join('')}`);
  assert.match(mid, /800\/1000 10\.0 step\/s ETA 20\.0s\n$/);
  assert.ok(!out.some((l) => / [0-5]\d% /.test(l)), 'no lines for the work done before the resume');
  assert.match(out[out.length - 1]!, /1000\/1000 10\.0 step\/s in 40\.0s\n$/);
});

test('non-TTY: time-based lines every 30 s for slow jobs', () => {
  const { out, stream } = fakeStream(false);
  let now = 0;
  const p = new Progress({ total: 10_000, stream, now: () => now });
  for (let i = 0; i < 100; i++) {
    now += 1000;
    p.tick();
  }
  // 100 s, 1% done: first tick + one line per 30 s
  assert.is(out.length, 4);
  assert.match(out[3]!, /1\.00 it\/s ETA 2h45m/);
});

test('TTY: \\r redraws at most ~5/s and newline at the end', () => {
  const { out, stream } = fakeStream(true);
  let now = 0;
  const p = new Progress({ total: 100, label: 'sample', stream, now: () => now });
  for (let i = 0; i < 100; i++) {
    now += 20; // 2 s in total -> ~10 redraws
    p.tick();
  }
  assert.ok(out.length >= 9 && out.length <= 12, `writes: ${out.length}`);
  assert.ok(out.every((s) => s.startsWith('\r')));
  assert.ok(out[out.length - 1]!.endsWith('\n'));
  assert.ok(out[out.length - 1]!.includes('100%'));
});

test('unknown total and slow rates', () => {
  const { out, stream } = fakeStream(false);
  let now = 0;
  const p = new Progress({ total: 0, label: 'eval', stream, unit: 'batch', now: () => now });
  now = 4000;
  p.tick();
  p.done();
  assert.match(out[out.length - 1]!, /^eval 1 4\.0 s\/batch in 4\.0s\n$/);
});

test.run();
