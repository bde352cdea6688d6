// Runs test files under Bun or Deno against the packed package, installed as
// their users get it (`npm run test:bun`, `npm run test:deno`, `npm run
// test:musl`, `npm run test:musl-arm64`: the official musl Bun, see
// scripts/lib/musl-bun.mjs): the tarball from `npm pack`, installed with
// scripts skipped, so the prebuild is what loads (scripts/lib/packed.mjs).
// The suite is copied into the project, where the `../dist` and `../..` the
// tests load resolve to the installed package. Children the tests spawn
// with process.execPath run under the same runtime.
//
//   node scripts/test-runtime.mjs bun|deno|bun-musl|bun-musl-arm64 [test files...]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { muslBun } from './lib/musl-bun.mjs';
import { copySuite, INSTALL, pack, project as makeProject } from './lib/packed.mjs';
import { root } from './lib/repo.mjs';
import { cleanEnv, run } from './lib/run.mjs';

const DEFAULT_FILES = [
  'api.test.js',
  'acquire.test.js',
  'processes.test.js',
  'cli.test.js',
  'cli-signals.test.js',
  'watch.test.js',
  'file-lock.test.js',
  'file-lock-wait.test.js',
  'watch-idle.test.js',
  'watch-symlink.test.js',
  'cli-watch.test.js',
];
// Under qemu, emulated several times slower, the other files' fixed timeouts
// (10 s for a child, 120 s for 30 rounds of worker terminations) expire when
// the machine is busy, and cli's spawn of a missing command exits 127 instead
// of failing with ENOENT (qemu's, not the addon's): arm64 runs the calls, the
// record and the cross-process exclusion and hand-over.
const ARM64_FILES = ['api.test.js', 'processes.test.js'];

// Per-test timeout for `bun test`, whose default (5 s) is shorter than the
// slowest of these tests on a busy machine; node:test and Deno have none.
const BUN_TEST_TIMEOUT_MS = 120_000;

const [name, ...requested] = process.argv.slice(2);
if (!['bun', 'deno', 'bun-musl', 'bun-musl-arm64'].includes(name)) {
  console.error('usage: node scripts/test-runtime.mjs bun|deno|bun-musl|bun-musl-arm64 [test files...]');
  process.exit(2);
}
const runtime = name === 'deno' ? 'deno' : 'bun';
const muslArch = { 'bun-musl': 'x64', 'bun-musl-arm64': 'arm64' }[name];
const musl = muslArch ? muslBun(muslArch) : null;
const files =
  requested.length > 0 ? requested.map((file) => file.replace(/^test\//, '')) : muslArch === 'arm64' ? ARM64_FILES : DEFAULT_FILES;
// The runtime is a devDependency (npm packages `bun` and `deno`), or the musl Bun.
const binary = musl?.binary ?? join(root, 'node_modules', '.bin', runtime);
// The prebuild the runtime must load: on musl it is found with no LIBC set.
const expectedAddon = musl ? join(`linux-${muslArch}`, 'loop-lock.musl.node') : '.node';

const env = cleanEnv();
env.NO_COLOR = '1';
delete env.LIBC;
// The runtime's own: npm runs without the musl Bun's libraries.
const runtimeEnv = { ...env, ...musl?.env };

/** Runs a command, streaming its output; returns its exit status, or throws on one but 0 unless `allowFailure`. */
function stream(command, args, cwd, { env: runEnv = env, allowFailure = false } = {}) {
  console.log(`$ ${command} ${args.join(' ')}`);
  return run(command, args, { cwd, env: runEnv, stdio: 'inherit', allowFailure }).status ?? 1;
}

const work = mkdtempSync(join(tmpdir(), `loop-lock-${name}-`));
let status = 1;
try {
  const tarball = pack(work);
  // A CommonJS project whose root stands for the package: its dist/ is the
  // installed package's, so the tests' `../dist` (and `../dist/cli.js`) and
  // the fixtures' `../..` all lead to the installed copy.
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const manifest = { name: 'loop-lock-runtime-test', version, private: true, type: 'commonjs', main: 'dist/index.js' };
  const project = makeProject(join(work, 'project'), manifest);
  stream('npm', [...INSTALL, tarball], project);
  symlinkSync(join('node_modules', 'loop-lock', 'dist'), join(project, 'dist'));
  copySuite(join(project, 'test'));

  // Which addon the runtime maps: the prebuild inside the installed package
  // (nothing was compiled, install scripts were skipped).
  writeFileSync(
    join(project, 'which-addon.js'),
    `require('loop-lock').LoopLock.isLocked(__dirname);
     const maps = require('node:fs').readFileSync('/proc/self/maps', 'utf8').split('\\n');
     console.log(maps.map((line) => line.split(/\\s+/)[5]).find((file) => file?.endsWith('.node')));\n`,
  );
  const which = spawnSync(binary, runtime === 'bun' ? ['which-addon.js'] : ['run', '--allow-all', 'which-addon.js'], {
    cwd: project,
    env: runtimeEnv,
    encoding: 'utf8',
  });
  const addon = which.stdout.trim();
  console.log(`${name} loads ${addon || `nothing (exit ${which.status}): ${which.stderr}`}`);
  if (!addon.startsWith(realpathSync(join(project, 'node_modules', 'loop-lock')) + sep) || !addon.endsWith(expectedAddon)) {
    throw new Error(`${name} did not load the installed package's ${expectedAddon}`);
  }

  const paths = files.map((file) => `./test/${file}`);
  const runtimeVersion = spawnSync(binary, ['--version'], { env: runtimeEnv, encoding: 'utf8' }).stdout.trim().split('\n')[0];
  console.log(`${binary}: ${runtimeVersion}; ${files.join(', ')} against ${tarball}`);
  status =
    runtime === 'bun'
      ? stream(binary, ['test', `--timeout=${BUN_TEST_TIMEOUT_MS}`, ...paths], project, { env: runtimeEnv, allowFailure: true })
      : stream(binary, ['test', '--allow-all', ...paths], project, { env: runtimeEnv, allowFailure: true });
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.exit(status);
