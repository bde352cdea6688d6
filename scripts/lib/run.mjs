// Running a command from a script, and the environment it runs in.
import { spawnSync } from 'node:child_process';
import { delimiter, sep } from 'node:path';

/**
 * Runs `command` to its end and returns spawnSync's result, with `output`
 * (the command line, its time and directory, then what it wrote) and
 * `seconds`. Throws with that output when it cannot start, or when it exits
 * non-zero unless `allowFailure`. Takes spawnSync's options (`stdio:
 * 'inherit'` streams instead of capturing).
 */
export function run(command, args, { allowFailure = false, ...options } = {}) {
  const started = performance.now();
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 256 << 20, ...options });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const where = options.cwd ? `, in ${options.cwd}` : '';
  const output = `$ ${command} ${args.join(' ')}  (${seconds} s${where})\n${result.stdout ?? ''}${result.stderr ?? ''}`;
  if (result.error) throw new Error(`${output}\n${result.error.message}`);
  if (result.status !== 0 && !allowFailure) throw new Error(`exit ${result.status ?? result.signal}\n${output}`);
  return { ...result, output, seconds };
}

/**
 * This process's environment without what `npm run` hands down: its
 * configuration as npm_* variables (its local_prefix is this repository) and
 * this repository's node_modules/.bin on PATH. Projects made outside the
 * repository, and the npm run in them, must see neither.
 */
export function cleanEnv() {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
  env.PATH = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => !dir.includes(`${sep}node_modules${sep}`))
    .join(delimiter);
  return env;
}
