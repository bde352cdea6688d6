import { lstatSync, readlinkSync } from 'node:fs';
import { dirname, isAbsolute, join, parse, sep } from 'node:path';
import { WatchRole } from './native.js';

/** What to watch for one lock path: `roles[i]` and `names[i]` say what matters in `directories[i]`. */
export interface WatchList {
  directories: string[];
  roles: WatchRole[];
  names: string[];
}

// As many symbolic links as Linux follows in one lookup (MAXSYMLINKS):
// past that, a path is a loop, and nothing is there.
const MAX_SYMLINKS = 40;

type Kind = 'directory' | 'symlink' | 'other' | 'missing';

function kindOf(path: string): Kind {
  try {
    const stats = lstatSync(path);
    if (stats.isSymbolicLink()) return 'symlink';
    return stats.isDirectory() ? 'directory' : 'other';
  } catch {
    return 'missing';
  }
}

function targetOf(link: string): string | null {
  try {
    return readlinkSync(link);
  } catch {
    return null;
  }
}

function components(path: string): string[] {
  return path.split(sep).filter((name) => name !== '' && name !== '.');
}

/**
 * The directories to watch for `lockPath`, found by walking the path as the
 * kernel resolves it now, one name at a time, following symbolic links:
 * - each directory stepped into, for its own move or removal;
 * - the directory holding each symbolic link on the way, for that name: a
 *   link re-pointed (`ln -sfn`) is a name made, moved or removed there, and
 *   nothing happens to the directories it pointed to;
 * - where the walk ends: the lock file's directory for the lock file, or,
 *   where a name is missing (a dangling link, a loop, a file where a
 *   directory should be), the directory that lacks it, for that name.
 * A change to any of these is a change of what the path names, and the walk
 * is made again (see `LockFeed.rewatch`).
 */
export function directoriesToWatch(lockPath: string): WatchList {
  const list: WatchList = { directories: [], roles: [], names: [] };
  const add = (directory: string, role: WatchRole, name: string): void => {
    list.directories.push(directory);
    list.roles.push(role);
    list.names.push(name);
  };
  const root = parse(lockPath).root;
  const pending = components(lockPath);
  let directory = root;
  let links = 0;
  while (pending.length > 0) {
    const name = pending.shift() as string;
    if (name === '..') {
      directory = dirname(directory);
      continue;
    }
    // The lock file itself is never followed (it is opened O_NOFOLLOW).
    if (pending.length === 0) {
      add(directory, WatchRole.LockDir, name);
      break;
    }
    const path = join(directory, name);
    const kind = kindOf(path);
    const target = kind === 'symlink' && links++ < MAX_SYMLINKS ? targetOf(path) : null;
    if (target !== null) {
      add(directory, WatchRole.Parent, name);
      pending.unshift(...components(target));
      if (isAbsolute(target)) directory = parse(target).root;
      continue;
    }
    if (kind !== 'directory') {
      add(directory, WatchRole.Parent, name);
      break;
    }
    directory = path;
    add(directory, WatchRole.Ancestor, '');
  }
  return list;
}

/** Whether two lists watch the same things. */
export function sameList(a: WatchList, b: WatchList): boolean {
  return (
    a.directories.length === b.directories.length &&
    a.directories.every((directory, i) => directory === b.directories[i] && a.names[i] === b.names[i] && a.roles[i] === b.roles[i])
  );
}
