import { sep } from 'node:path';

// The separators Rust's std::path splits on: '/' on Unix, either slash on Windows.
const SEPARATOR = sep === '\\' ? /[\\/]/ : /\//;

/**
 * The lock file that ralph-core's `file_lock.rs` locks for `path`:
 * `path.with_extension(format!("{}.lock", ext))`, where `ext` is the path's
 * extension or empty, named byte for byte as Rust's `std::path` names it,
 * or the two sides would lock different files:
 *
 * - `tasks.jsonl` gives `tasks.jsonl.lock`, `a.b.c` gives `a.b.c.lock`;
 * - a name without an extension gains an empty one: `noext` gives
 *   `noext..lock`, and so does `noext.` (its extension is empty), and a
 *   dot file has none: `.env` gives `.env..lock`;
 * - the name is the last normal component: a trailing `/` or `/.` is
 *   dropped with everything after the stem (`dir/` gives `dir..lock`);
 * - a path without one (ending in `..`, the root, `.`) is returned as it
 *   is, and then fails to open as a directory, as in Rust.
 */
export function sidecarOf(path: string): string {
  const name = lastName(path);
  if (name === null) return path;
  const { stem, extension } = splitName(path.slice(name.start, name.end));
  const ext = `${extension ?? ''}.lock`;
  // with_extension: everything after the stem goes, then "." and the new
  // extension (never empty here) are added.
  return `${path.slice(0, name.start + stem.length)}.${ext}`;
}

/**
 * Where `file_name()` is in `path`: the last component when it is a normal
 * one. Rust's components skip empty ones (repeated or trailing separators)
 * and `.` anywhere but at the start; `..`, a leading `.` or the root as the
 * last component mean there is no file name.
 */
function lastName(path: string): { start: number; end: number } | null {
  let end = path.length;
  for (;;) {
    const before = lastSeparator(path, end);
    const component = path.slice(before + 1, end);
    if (component === '' || (component === '.' && before >= 0)) {
      if (before < 0) return null;
      end = before;
      continue;
    }
    if (component === '.' || component === '..' || isWindowsPrefix(component, before)) return null;
    return { start: before + 1, end };
  }
}

function lastSeparator(path: string, end: number): number {
  for (let i = end - 1; i >= 0; i--) {
    if (SEPARATOR.test(path[i] as string)) return i;
  }
  return -1;
}

// A drive prefix (`C:`) is no file name on Windows.
function isWindowsPrefix(component: string, before: number): boolean {
  return sep === '\\' && before < 0 && /^[A-Za-z]:$/.test(component);
}

/**
 * Rust's `rsplit_file_at_dot`: the stem and extension of a file name. The
 * extension follows the last dot, unless nothing precedes that dot (`.env`
 * has none); it may be empty (`foo.` has `""`).
 */
function splitName(name: string): { stem: string; extension: string | undefined } {
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return { stem: name, extension: undefined };
  return { stem: name.slice(0, dot), extension: name.slice(dot + 1) };
}
