// Installs the packed tarball the way users do and checks what they get:
// the prebuild on a machine without a compiler, the advice and the build
// from source where no prebuild fits, and the published types under every
// moduleResolution TypeScript users pick. Kept out of `npm test` because it
// packs, installs from the registry and compiles (`npm run test:package`).
import assert from 'node:assert/strict';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, test } from 'node:test';
import { INSTALL, pack, project as makeProject } from './lib/packed.mjs';
import { root } from './lib/repo.mjs';
import { cleanEnv as withoutNpm, run as runCommand } from './lib/run.mjs';

const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const tuple = `${process.platform}-${process.arch}`;
const work = mkdtempSync(join(tmpdir(), 'loop-lock-package-'));
after(() => rmSync(work, { recursive: true, force: true }));

const cleanEnv = withoutNpm();

/** Runs a command in the work directory, failing the test with its output when it exits non-zero. */
const run = (command, args, options = {}) => runCommand(command, args, { cwd: work, env: cleanEnv, ...options });

/** Every executable of that name on PATH, first one first. */
function onPath(name) {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter(Boolean)
    .map((dir) => join(dir, name))
    .filter((file) => {
      try {
        accessSync(file, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

const npm = onPath('npm')[0];

// A PATH holding node and npm and nothing else: no compiler, make or Python,
// like a slim container image.
const bareBin = join(work, 'bare-bin');
mkdirSync(bareBin);
symlinkSync(process.execPath, join(bareBin, 'node'));
symlinkSync(realpathSync(npm), join(bareBin, 'npm'));
const bareEnv = { ...cleanEnv, PATH: bareBin };

// Every Node.js from 20 up on this machine, so the prebuild is tried on each
// ABI there is; LOOP_LOCK_TEST_NODES adds more (paths, separated like PATH).
const nodes = [
  ...new Map(
    [process.execPath, ...onPath('node'), ...onPath('nodejs'), ...(process.env.LOOP_LOCK_TEST_NODES ?? '').split(delimiter)]
      .filter(Boolean)
      .map((file) => [realpathSync(file), file]),
  ).keys(),
].filter((file) => {
  const major = Number(run(file, ['-p', 'process.versions.node.split(".")[0]']).stdout.trim());
  return major >= 20;
});

// What a user's program does: take the lock, see it held and by whom, see a
// second taker refused, hand it to a waiting acquire() on release. It also
// reports which file its import resolved to and which addon the process
// mapped, or the error it got.
const consumerBody = `
async function main() {
  const work = mkdtempSync(join(tmpdir(), 'loop-lock-consumer-'));
  try {
    const guard = LoopLock.tryAcquire(work, 'package test');
    const status = LoopLock.status(work);
    let second = null;
    try {
      LoopLock.tryAcquire(work, 'second taker').release();
    } catch (error) {
      second = error.code;
    }
    const waiting = LoopLock.acquire(work, 'waiter', { signal: AbortSignal.timeout(60_000) });
    guard.release();
    const handed = await waiting;
    const handedTo = handed.metadata.prompt;
    handed.release();
    const addon = readFileSync('/proc/self/maps', 'utf8')
      .split('\\n')
      .map((line) => line.split(/\\s+/)[5])
      .find((file) => file !== undefined && file.endsWith('.node'));
    return { ok: true, entry, shared, pid: process.pid, holder: status.holder?.pid, locked: status.locked,
             second, handedTo, lockedAfterRelease: LoopLock.isLocked(work), addon };
  } catch (error) {
    return { ok: false, entry, code: error.code, message: error.message, cause: error.cause?.message };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
main().then((result) => process.stdout.write(JSON.stringify(result)));
`;

const consumers = {
  'esm.mjs': `import { LoopLock } from 'loop-lock';
import * as loopLock from 'loop-lock';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
const entry = fileURLToPath(import.meta.resolve('loop-lock'));
const shared = loopLock.LoopLock === createRequire(import.meta.url)('loop-lock').LoopLock;
${consumerBody}`,
  'cjs.cjs': `const { LoopLock } = require('loop-lock');
const { mkdtempSync, readFileSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const entry = require.resolve('loop-lock');
const shared = true;
${consumerBody}`,
};

/** A fresh project with the consumer programs, outside the repository. */
function project(name) {
  const dir = makeProject(join(work, name), { name, version: '1.0.0', private: true });
  for (const [file, text] of Object.entries(consumers)) writeFileSync(join(dir, file), text);
  return dir;
}

/** Runs both consumer programs with `node`, returning what each reported. */
function consume(dir, node = process.execPath, env = cleanEnv) {
  return Object.fromEntries(
    Object.keys(consumers).map((file) => {
      const result = run(node, [file], { cwd: dir, env, allowFailure: true });
      assert.ok(result.stdout.startsWith('{'), result.output);
      return [file, { ...JSON.parse(result.stdout), status: result.status }];
    }),
  );
}

function assertTookLock(dir, reports, addon) {
  const installed = join(dir, 'node_modules', 'loop-lock');
  for (const [file, report] of Object.entries(reports)) {
    assert.equal(report.ok, true, `${file}: ${report.message}`);
    assert.equal(report.entry, join(installed, 'dist', file === 'esm.mjs' ? 'index.mjs' : 'index.js'), file);
    assert.equal(report.shared, true, `${file}: import and require gave different modules`);
    assert.equal(report.locked, true, file);
    assert.equal(report.holder, report.pid, file);
    assert.equal(report.second, 'ELOCKED', file);
    assert.equal(report.handedTo, 'waiter', file);
    assert.equal(report.lockedAfterRelease, false, file);
    assert.equal(report.addon, realpathSync(join(installed, addon)), file);
  }
}

let tarball;
let bareTarball;

before(() => {
  tarball = pack(work);
  // The same package as a platform with no prebuild gets it.
  const unpacked = join(work, 'unpacked');
  mkdirSync(unpacked);
  run('tar', ['-xzf', tarball, '-C', unpacked]);
  rmSync(join(unpacked, 'package', 'prebuilds'), { recursive: true, force: true });
  bareTarball = join(work, 'loop-lock-without-prebuilds.tgz');
  run('tar', ['-czf', bareTarball, '-C', unpacked, 'package']);
});

test('the tarball holds the runtime, the sources to build it and the prebuild, nothing else', () => {
  const files = run('tar', ['-tzf', tarball]).stdout.trim().split('\n').sort();
  const allowed =
    /^package\/(package\.json|README\.md|LICENSE|CHANGELOG\.md|docs\/[\w.-]+\.md|binding\.gyp|scripts\/install\.js|dist\/[\w.-]+\.(js|mjs|d\.ts|d\.mts)|native\/([\w-]+\/)?[\w.-]+\.(cc|h)|prebuilds\/[\w+-]+\/[\w.-]+\.node)$/;
  assert.deepEqual(
    files.filter((file) => !allowed.test(file)),
    [],
  );
  for (const required of [
    'package/LICENSE',
    'package/binding.gyp',
    'package/scripts/install.js',
    'package/dist/index.js',
    'package/dist/index.d.ts',
    'package/dist/index.mjs',
    'package/dist/index.d.mts',
    'package/native/binding.cc',
    'package/native/posix/file.cc',
    'package/prebuilds/linux-x64/loop-lock.glibc.node',
    'package/prebuilds/linux-arm64/loop-lock.glibc.node',
    'package/prebuilds/linux-x64/loop-lock.musl.node',
    'package/prebuilds/linux-arm64/loop-lock.musl.node',
    'package/prebuilds/darwin-x64/loop-lock.node',
    'package/prebuilds/darwin-arm64/loop-lock.node',
    'package/prebuilds/win32-x64/loop-lock.node',
  ]) {
    assert.ok(files.includes(required), `${required} is missing from the tarball`);
  }
});

test('with the prebuild, an install without scripts or compiler loads it from import and require on every Node.js', (t) => {
  for (const tool of ['g++', 'c++', 'gcc', 'cc', 'make', 'python3', 'python']) {
    assert.equal(existsSync(join(bareBin, tool)), false);
  }
  const dir = project('with-prebuild');
  run(join(bareBin, 'npm'), [...INSTALL, tarball], { cwd: dir, env: bareEnv });
  assert.equal(existsSync(join(dir, 'node_modules', 'loop-lock', 'build')), false, 'something was compiled');
  assert.ok(nodes.length > 0);
  for (const node of nodes) {
    t.diagnostic(`${node}: Node.js ${run(node, ['--version']).stdout.trim()}`);
    assertTookLock(dir, consume(dir, node, bareEnv), join('prebuilds', 'linux-x64', 'loop-lock.glibc.node'));
  }
});

test('without a prebuild, the first call explains how to build one, and approving the install script builds it', () => {
  const dir = project('without-prebuild');
  run(npm, [...INSTALL, bareTarball], { cwd: dir });
  for (const [file, report] of Object.entries(consume(dir))) {
    assert.equal(report.ok, false, `${file} loaded an addon that should not exist`);
    assert.equal(report.code, 'ENOBUILD', `${file}: ${report.message}`);
    assert.match(report.cause, /^No native build was found/, file);
    for (const part of [
      tuple,
      `ABI ${process.versions.modules}`,
      `N-API ${process.versions.napi}`,
      join(realpathSync(dir), 'node_modules', 'loop-lock', 'prebuilds', tuple),
      'npm install-scripts approve loop-lock',
      'npm rebuild loop-lock',
    ]) {
      assert.ok(report.message.includes(part), `${file}: no "${part}" in:\n${report.message}`);
    }
  }
  // What the message tells the user to do. --strict-allow-scripts makes an
  // unapproved script an error, so success proves the approval counted.
  run(npm, ['install-scripts', 'approve', 'loop-lock'], { cwd: dir });
  assert.ok(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).allowScripts, 'no allowScripts written');
  run(npm, ['rebuild', 'loop-lock', '--foreground-scripts', '--strict-allow-scripts'], { cwd: dir });
  assertTookLock(dir, consume(dir), join('build', 'Release', 'loop_lock.node'));
});

test('without a prebuild, an install with the script approved compiles the addon from source', () => {
  const approved = JSON.parse(readFileSync(join(work, 'without-prebuild', 'package.json'), 'utf8')).allowScripts;
  const dir = project('approved-install');
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ ...pkg, allowScripts: approved }, null, 2));
  const install = run(
    npm,
    ['install', '--foreground-scripts', '--strict-allow-scripts', '--no-audit', '--no-fund', bareTarball],
    { cwd: dir },
  );
  assert.match(install.output, /gyp info ok/);
  assertTookLock(dir, consume(dir), join('build', 'Release', 'loop_lock.node'));
});

// A program written against the published types: every export is used and
// one wrong call must be rejected, so types that decayed to `any` fail.
const typedProgram = (from) => `${from}

const workspace: string | URL = new URL('file:///tmp/loop-lock-types/');
const options: LockOptions = { lockFile: LoopLock.LOCK_FILE };
const guard: LockGuard = LoopLock.tryAcquire(workspace, 'typed', options);
const metadata: LockMetadata = guard.metadata;
const started: Date = metadata.started;
const state: GuardState = guard.state();
const status: LockStatus = LoopLock.status(workspace);
const holderPid: number | undefined = status.holder?.pid;
const locked: boolean = LoopLock.isLocked(workspace) && !guard.released;
const last: LockMetadata | null = LoopLock.readExisting(workspace);
guard[Symbol.dispose]();
const controller = new AbortController();
const acquireOptions: AcquireOptions = { signal: controller.signal, lockFile: LOCK_FILE };
const pending: Promise<LockGuard> = LoopLock.acquire(workspace, 'typed', acquireOptions);
controller.abort();
pending.then((held) => held.release(), (reason: unknown) => console.log(reason));
try {
  LoopLock.acquireBlocking(workspace, 'typed').release();
} catch (error) {
  if (error instanceof AlreadyLockedError) console.log(error.holder?.prompt);
  else if (error instanceof LockParseError || error instanceof UnsupportedPlatformError) console.log(error.code);
  else if (error instanceof LockError) console.log(error.path, error.syscall, error.errno);
}
const details: LockErrorDetails = { code: 'EIO' };
const limit: number = MAX_METADATA_BYTES;
const file: string = LOCK_FILE;
console.log(started, state, holderPid, locked, last, details, limit, file);
// @ts-expect-error a workspace is a path or a file: URL
LoopLock.isLocked(42);
`;

const imports = `type AcquireOptions,
  AlreadyLockedError,
  type GuardState,
  LOCK_FILE,
  LockError,
  type LockErrorDetails,
  type LockGuard,
  type LockMetadata,
  type LockOptions,
  LockParseError,
  type LockStatus,
  LoopLock,
  MAX_METADATA_BYTES,
  UnsupportedPlatformError,`;

const typeCheckSetups = {
  // ESM and CommonJS files side by side, as Node resolves them.
  node16: { module: 'node16', moduleResolution: 'node16', files: ['esm.mts', 'cjs.cts'] },
  nodenext: { module: 'nodenext', moduleResolution: 'nodenext', files: ['esm.mts', 'cjs.cts'] },
  // A bundler reads the import condition.
  bundler: { module: 'esnext', moduleResolution: 'bundler', files: ['app.ts'] },
};

for (const [label, version] of [
  ['the TypeScript this repository builds with', manifest.devDependencies.typescript],
  ['the latest TypeScript', 'latest'],
]) {
  test(`the published types check under node16, nodenext and bundler, with and without "types": ["node"], with ${label}`, (t) => {
    const dir = join(work, 'with-prebuild');
    run(
      npm,
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--no-save',
        `typescript@${version}`,
        `@types/node@${manifest.devDependencies['@types/node']}`,
      ],
      { cwd: dir },
    );
    const tsc = join(dir, 'node_modules', 'typescript', 'package.json');
    t.diagnostic(`typescript ${JSON.parse(readFileSync(tsc, 'utf8')).version}`);
    const src = join(dir, 'src');
    mkdirSync(src, { recursive: true });
    const program = typedProgram(`import {\n  ${imports}\n} from 'loop-lock';`);
    for (const file of ['esm.mts', 'cjs.cts', 'app.ts']) writeFileSync(join(src, file), program);
    // Without "types", TypeScript 7 loads no @types package by itself (5.x
    // loads them all): the declarations must bring Node's types along.
    for (const [resolution, { module, moduleResolution, files }] of Object.entries(typeCheckSetups)) {
      for (const types of [['node'], undefined]) {
        const config = join(dir, `tsconfig.${resolution}${types === undefined ? '.no-types' : ''}.json`);
        const compilerOptions = {
          module,
          moduleResolution,
          target: 'es2022',
          lib: ['es2022'],
          ...(types === undefined ? {} : { types }),
          strict: true,
          noEmit: true,
          skipLibCheck: false,
        };
        writeFileSync(config, JSON.stringify({ compilerOptions, files: files.map((file) => `src/${file}`) }, null, 2));
        run(process.execPath, [join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', config], { cwd: dir });
      }
    }
  });
}
