import { statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { LockError } from './errors.js';
import { toPathString } from './options.js';

/** The variable that names the workspace outright, as ralph reads it. */
const WORKSPACE_VARIABLE = 'RALPH_WORKSPACE_ROOT';

/**
 * Whether `path` names something `stat()` can see (a link is followed);
 * any failure counts as nothing there, as Rust's `Path::exists` and
 * `Path::is_dir` have it.
 */
function stats(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

/** Whether `dir` marks a workspace: a `.ralph` directory, or a `.git` of any kind (a worktree's is a file). */
function isWorkspace(dir: string): boolean {
  return stats(join(dir, '.ralph'))?.isDirectory() === true || stats(join(dir, '.git')) !== undefined;
}

/**
 * The workspace root, found as ralph-cli's `resolve_workspace_root` finds
 * it: `RALPH_WORKSPACE_ROOT` when it is set and not blank; else the nearest
 * directory from `start` up (itself included) that holds a `.ralph`
 * directory or a `.git` entry; else `start`. Always an absolute path,
 * resolved lexically against the current directory; symbolic links are not
 * resolved, only followed where a marker is looked for.
 */
export function findWorkspace(start: unknown = process.cwd()): string {
  const from = resolve(toPathString(start, 'start'));
  if (from.includes('\0')) {
    throw new LockError(`EINVAL: the workspace path contains a NUL byte '${from.replace(/\0/g, '\\u0000')}'`, {
      code: 'EINVAL',
      path: from,
    });
  }
  const named = process.env[WORKSPACE_VARIABLE];
  if (named !== undefined && named.trim() !== '') return resolve(named);
  for (let dir = from; ; dir = dirname(dir)) {
    if (isWorkspace(dir)) return dir;
    if (dirname(dir) === dir) return from;
  }
}
