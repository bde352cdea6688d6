import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';

/** Whether `path` is a regular file (links followed). */
function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The file `command` names, as execvp() looks for it: a path as given, a bare name on PATH. */
function fileOf(command: string): string | undefined {
  if (command.includes('/')) return isFile(command) ? resolve(command) : undefined;
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    const candidate = join(dir === '' ? '.' : dir, command);
    if (isFile(candidate)) return candidate;
  }
  return undefined;
}

/** The interpreter a `#!` line names, or `undefined` when the file has none (or cannot be read). */
function interpreterOf(file: string): string | undefined {
  const head = Buffer.alloc(256);
  let length: number;
  try {
    const fd = openSync(file, 'r');
    try {
      length = readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const text = head.subarray(0, length).toString('latin1');
  if (!text.startsWith('#!')) return undefined;
  return text.slice(2).split('\n')[0]?.trim().split(/[ \t]/)[0] || undefined;
}

/**
 * What is missing when starting `command` failed with ENOENT: the command
 * itself, or, when its file is there, what the kernel needed to start it
 * (execve() says ENOENT for those too): the interpreter its `#!` line names,
 * or for a binary its loader (an executable built for another libc).
 */
export function missingPart(command: string): string {
  const file = fileOf(command);
  if (file === undefined || process.platform === 'win32') return `command not found: ${command}`;
  const interpreter = interpreterOf(file);
  if (interpreter === undefined) {
    return `cannot start ${command}: it exists, but the loader it needs (its ELF interpreter) was not found`;
  }
  if (!isFile(interpreter)) {
    return `cannot start ${command}: its interpreter ${interpreter} (named on its #! line) was not found`;
  }
  return `cannot start ${command}: it exists, but its interpreter ${interpreter} could not be started`;
}
