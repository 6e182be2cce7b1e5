/**
 * Crash-safe file writes: data goes to a temporary file in the same directory, is fsynced,
 * then renamed over the target (rename is atomic on POSIX within one filesystem). A killed
 * process therefore leaves either the old file or the new one, never a half-written file.
 */
import { promises as fsp, constants as fsc } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DriftlabError } from '../util/errors.js';

export interface NoClobberOptions {
  /** Replace an existing file. Default false: refuse with a DriftlabError. */
  overwrite?: boolean;
}

function describeFsError(e: unknown, target: string, what: string): DriftlabError {
  const code = (e as NodeJS.ErrnoException)?.code;
  switch (code) {
    case 'ENOENT':
      return new DriftlabError(`cannot ${what} ${target}: directory ${path.dirname(target)} does not exist; create it first`);
    case 'EACCES':
    case 'EPERM':
      return new DriftlabError(`cannot ${what} ${target}: permission denied; choose a writable location`);
    case 'ENOSPC':
      return new DriftlabError(`cannot ${what} ${target}: disk is full; free some space and retry`);
    case 'EISDIR':
      return new DriftlabError(`cannot ${what} ${target}: it is a directory; pass a file path`);
    case 'EROFS':
      return new DriftlabError(`cannot ${what} ${target}: filesystem is read-only; choose a writable location`);
    default: {
      const msg = e instanceof Error ? e.message : String(e);
      return new DriftlabError(`cannot ${what} ${target}: ${msg.split('\n')[0]}`);
    }
  }
}

/**
 * A temp file writeFileAtomic left behind when its process was killed between open and rename
 * (`NAME.tmp-PID-HEX`): garbage, never a result; folder checks must not count it.
 */
export const isAtomicLeftover = (name: string) => /\.tmp-\d+-[0-9a-f]{12}$/.test(name);

/** Write `data` to `target` atomically (temp file + fsync + rename). Overwrites silently. */
export async function writeFileAtomic(target: string, data: Uint8Array | string): Promise<void> {
  const dir = path.dirname(path.resolve(target));
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`; // isAtomicLeftover() knows this form
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, 'wx', 0o644);
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, target);
  } catch (e) {
    if (fh) await fh.close().catch(() => undefined);
    await fsp.unlink(tmp).catch(() => undefined);
    if (e instanceof DriftlabError) throw e;
    throw describeFsError(e, target, 'write');
  }
  // Persist the rename itself (directory entry). Best effort: not supported everywhere.
  try {
    const dh = await fsp.open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    /* directory fsync unsupported (e.g. some platforms); the data itself is already synced */
  }
}

/** Does `p` exist (any type of entry)? */
export async function pathExists(p: string): Promise<boolean> {
  try {
    await fsp.access(p, fsc.F_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Like writeFileAtomic, but refuses to replace an existing file unless `overwrite` is true.
 * (The check and the rename are not one atomic step; this guards against user mistakes,
 * not against concurrent writers.)
 */
export async function writeFileNoClobber(
  target: string,
  data: Uint8Array | string,
  opts: NoClobberOptions = {},
): Promise<void> {
  if (!opts.overwrite && (await pathExists(target))) {
    throw new DriftlabError(`${target} already exists; pass --overwrite to replace it or choose another path`);
  }
  await writeFileAtomic(target, data);
}

/**
 * Read a whole file, turning filesystem errors into one-line DriftlabErrors.
 * `kind` names the file for the user, e.g. 'checkpoint' or 'npy file'.
 */
export async function readFileChecked(target: string, kind = 'file'): Promise<Uint8Array> {
  try {
    const buf = await fsp.readFile(target);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException)?.code;
    if (code === 'ENOENT') throw new DriftlabError(`${kind} not found: ${target}; check the path`);
    if (code === 'EISDIR') throw new DriftlabError(`${kind} path ${target} is a directory; pass a file`);
    if (code === 'EACCES' || code === 'EPERM') throw new DriftlabError(`cannot read ${kind} ${target}: permission denied`);
    if (code === 'ERR_FS_FILE_TOO_LARGE') throw new DriftlabError(`${kind} ${target} is too large to read into memory (> 2 GB)`);
    const msg = e instanceof Error ? e.message : String(e);
    throw new DriftlabError(`cannot read ${kind} ${target}: ${msg.split('\n')[0]}`);
  }
}
