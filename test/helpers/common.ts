/** Small shared test helpers: temp folders cleaned up at exit, and DriftlabError assertions. */
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DriftlabError } from '../../src/util/errors.js';

const tempDirs: string[] = [];
process.on('exit', () => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh temporary folder, removed when the process exits. */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

function checkDriftlabError(e: unknown, pattern: RegExp, label: string): void {
  assert.instance(e, DriftlabError, `${label}expected DriftlabError, got ${String(e)}`);
  const msg = (e as Error).message;
  assert.ok(pattern.test(msg), `${label}message ${JSON.stringify(msg)} does not match ${pattern}`);
  assert.not.ok(msg.includes('\n'), `${label}message must be one line`);
}

/** Assert fn throws a DriftlabError whose one-line message matches pattern. */
export function throwsDriftlab(fn: () => unknown, pattern: RegExp, label = ''): void {
  const prefix = label ? `${label}: ` : '';
  try {
    fn();
  } catch (e) {
    checkDriftlabError(e, pattern, prefix);
    return;
  }
  assert.unreachable(`${prefix}expected a DriftlabError`);
}

export async function rejectsDriftlab(p: Promise<unknown>, pattern: RegExp, label = ''): Promise<void> {
  const prefix = label ? `${label}: ` : '';
  try {
    await p;
  } catch (e) {
    checkDriftlabError(e, pattern, prefix);
    return;
  }
  assert.unreachable(`${prefix}expected a DriftlabError`);
}
