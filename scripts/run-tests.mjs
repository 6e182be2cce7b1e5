#!/usr/bin/env node
// Runs the uvu suite (compiled to dist/test) and fails unless every test ran and passed.
// uvu 0.5 exits 0 when a test.before hook throws (it reports "0 / N" and moves on), so the
// totals are checked here; the last line is the plain "N passed, N failed" summary.
import { spawn } from 'node:child_process';

const args = ['node_modules/uvu/bin.js', 'dist/test', '.test.js$', ...process.argv.slice(2)];
const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
child.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
child.on('close', (code) => {
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
  const num = (label) => Number((plain.match(new RegExp(`${label}:\\s+(\\d+)`)) ?? [])[1] ?? NaN);
  const total = num('Total'), passed = num('Passed'), skipped = num('Skipped') || 0;
  // uvu's Skipped can absorb a failure in its arithmetic; its FAIL markers cannot
  const marked = (plain.match(/^\s*FAIL\s+"/gm) ?? []).length;
  const failed = Number.isFinite(total) && Number.isFinite(passed) ? Math.max(total - passed - skipped, marked) : NaN;
  if (!Number.isFinite(failed)) {
    console.log('\ncould not read the uvu summary; treating the run as failed');
    process.exit(code || 1);
  }
  console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(code !== 0 || failed > 0 || total === 0 ? 1 : 0);
});
