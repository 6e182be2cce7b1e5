/** Finding an external program: an explicit path from the environment, else the first match on $PATH. */
import { accessSync, constants as fsc, statSync } from 'node:fs';
import * as path from 'node:path';

export function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, fsc.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * env[overrideVar] when it names an executable file (resolved), else the first of `names`
 * found executable on env.PATH (names in order of preference; PATHEXT on Windows); null if none.
 * Empty PATH entries (which would mean the current directory) are never searched.
 */
export function findExecutable(names: string[], overrideVar: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const forced = env[overrideVar];
  if (forced && isExecutableFile(forced)) return path.resolve(forced);
  const dirs = (env.PATH ?? '').split(path.delimiter).filter(Boolean);
  const exts = process.platform === 'win32' ? (env.PATHEXT ?? '.EXE').split(';') : [''];
  for (const name of names) for (const dir of dirs) for (const ext of exts) {
    const p = path.join(dir, name + ext);
    if (isExecutableFile(p)) return p;
  }
  return null;
}
