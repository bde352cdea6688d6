#!/usr/bin/env node
// The prebuilt addons in prebuilds/: build them, record what they were built
// from, and check them.
//
//   node scripts/prebuilds.mjs build           every `prebuild:<recipe>` npm script, then check
//                                              (`npm run prebuilds`)
//   node scripts/prebuilds.mjs record NAME…    write the entries of NAME's files in prebuilds.json
//   node scripts/prebuilds.mjs check [NAME…]   (`npm run check:prebuilds`: every prebuild)
//   node scripts/prebuilds.mjs inspect DIR FILE…  check DIR/FILE as prebuilds/FILE would be checked
//
// A NAME is a recipe (linux, musl, darwin, win32: the files its
// `prebuild:<recipe>` npm script makes), a target (linux-x64: the files
// there made by the recipe named after its OS) or one file
// (linux-x64/loop-lock.musl.node).
//
// `check` fails when a prebuild that must ship is missing, when prebuilds/
// holds anything else, when a file is not what its place says it is (see
// lib/inspect-prebuild.mjs: glibc floor, musl, macOS, Windows), and when a
// prebuild is stale. Stale means: its bytes are not the ones recorded in
// prebuilds.json, or one of its inputs changed since it was recorded: a file
// in native/, binding.gyp, the packages its recipe compiles with as locked in
// package-lock.json, or the script its `prebuild:<recipe>` npm script runs
// with the modules it imports from scripts/lib/.
// The builds happen in a chroot or with a cross compiler that CI does not
// fetch, so the record of their inputs is what tells CI they are current.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { FLOOR, inspect, MACOS_MIN } from './lib/inspect-prebuild.mjs';
import { root } from './lib/repo.mjs';
import { run } from './lib/run.mjs';
const MANIFEST = 'prebuilds.json';

// Every prebuild that ships, and the recipe that makes it: the npm script
// `prebuild:<recipe>`.
const PREBUILDS = {
  'darwin-arm64/loop-lock.node': 'darwin',
  'darwin-x64/loop-lock.node': 'darwin',
  'linux-arm64/loop-lock.glibc.node': 'linux',
  'linux-arm64/loop-lock.musl.node': 'musl',
  'linux-x64/loop-lock.glibc.node': 'linux',
  'linux-x64/loop-lock.musl.node': 'musl',
  'win32-x64/loop-lock.node': 'win32',
};

// The packages each recipe compiles with: node-addon-api's headers; node-gyp's
// build files (linux, win32); node-api-headers' def file, Windows' import
// library. (Zig and the Node headers are pinned in scripts/lib/.)
const PACKAGES = {
  linux: ['node-addon-api', 'node-gyp'],
  win32: ['node-addon-api', 'node-gyp', 'node-api-headers'],
  darwin: ['node-addon-api'],
  musl: ['node-addon-api'],
};

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const rel = (file) => relative(root, file);
const packageJson = () => JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

function filesUnder(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? filesUnder(join(dir, entry.name)) : [join(dir, entry.name)]))
    .sort();
}

/** The script files an npm script runs (the words of its command that name files here), with what they import. */
function recipeFiles(recipe) {
  const command = packageJson().scripts?.[`prebuild:${recipe}`];
  if (command === undefined) return { command: null, files: [] };
  const files = new Set(
    command.split(/\s+/).filter((word) => /[\w-]\.\w+$/.test(word) && existsSync(join(root, word)) && statSync(join(root, word)).isFile()),
  );
  for (const file of files) for (const imported of localImports(file)) files.add(imported);
  return { command, files: [...files].sort() };
}

/** The files of this repository that a script imports by a relative path (`from './lib/run.mjs'`). */
function localImports(file) {
  const text = readFileSync(join(root, file), 'utf8');
  return [...text.matchAll(/^import [^;]*?from '(\.{1,2}\/[^']+)';$/gms)].map(([, path]) => rel(join(root, dirname(file), path)));
}

/** What a recipe's bytes depend on, each with a digest. */
function inputsOf(recipe) {
  const inputs = {};
  for (const file of [join(root, 'binding.gyp'), ...filesUnder(join(root, 'native'))]) {
    inputs[rel(file)] = sha256(readFileSync(file));
  }
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
  for (const name of PACKAGES[recipe]) {
    const locked = lock.packages?.[`node_modules/${name}`];
    inputs[name] = locked ? `${locked.version} ${locked.integrity}` : 'none';
  }
  const { command, files } = recipeFiles(recipe);
  inputs[`npm run prebuild:${recipe}`] = command ?? 'none';
  for (const file of files) inputs[file] = sha256(readFileSync(join(root, file)));
  return inputs;
}

/** The prebuilds a NAME stands for (see the top of this file). */
function select(names) {
  if (names.length === 0) return Object.keys(PREBUILDS);
  return names.flatMap((name) => {
    const keys = Object.keys(PREBUILDS).filter(
      (key) => key === name || PREBUILDS[key] === name || (dirname(key) === name && PREBUILDS[key] === name.split('-')[0]),
    );
    if (keys.length === 0) throw new Error(`${name}: no such recipe, target or prebuild (see PREBUILDS in scripts/prebuilds.mjs)`);
    return keys;
  });
}

const readManifest = () =>
  existsSync(join(root, MANIFEST)) ? JSON.parse(readFileSync(join(root, MANIFEST), 'utf8')) : { prebuilds: {} };

function record(keys) {
  const manifest = readManifest();
  for (const key of keys) {
    const file = join(root, 'prebuilds', key);
    if (!existsSync(file)) throw new Error(`nothing to record: no ${rel(file)}`);
    manifest.prebuilds[key] = {
      sha256: sha256(readFileSync(file)),
      needs: inspect(key, file).needs,
      inputs: inputsOf(PREBUILDS[key]),
    };
  }
  const text = {
    about:
      'Written by `npm run prebuilds`: each prebuild, its digest, what it needs of the system and the digests of what it was built from. `npm run check:prebuilds` fails when they no longer match.',
    prebuilds: Object.fromEntries(Object.entries(manifest.prebuilds).sort(([a], [b]) => a.localeCompare(b))),
  };
  writeFileSync(join(root, MANIFEST), `${JSON.stringify(text, null, 2)}\n`);
  console.log(`recorded ${keys.join(', ')} in ${MANIFEST}`);
}

const describe = (needs) =>
  needs === null ? 'nothing versioned' : Object.entries(needs).map(([what, version]) => (what === 'libc' || what === 'macOS' ? `${what} ${version}` : `${what}_${version}`)).join(' ');

function check(names) {
  const keys = select(names);
  const manifest = readManifest();
  const failures = [];
  const shipped = filesUnder(join(root, 'prebuilds')).map((file) => relative(join(root, 'prebuilds'), file));
  if (names.length === 0) {
    for (const extra of shipped.filter((key) => !(key in PREBUILDS))) {
      failures.push(`prebuilds/${extra}: not a prebuild this package ships (PREBUILDS in scripts/prebuilds.mjs)`);
    }
  }
  for (const key of keys) {
    const file = join(root, 'prebuilds', key);
    const rebuild = `run \`npm run prebuild:${PREBUILDS[key]}\` (or \`npm run prebuilds\`) and commit the result`;
    if (!existsSync(file)) {
      failures.push(`prebuilds/${key} is missing: ${rebuild}`);
      continue;
    }
    try {
      console.log(`prebuilds/${key}: needs ${describe(inspect(key, file).needs)}`);
    } catch (error) {
      failures.push(error.message);
    }
    const recorded = manifest.prebuilds[key];
    if (recorded === undefined) {
      failures.push(`prebuilds/${key} is not recorded in ${MANIFEST}: ${rebuild}`);
      continue;
    }
    if (recorded.sha256 !== sha256(readFileSync(file))) failures.push(`prebuilds/${key} is not the file recorded in ${MANIFEST}: ${rebuild}`);
    const now = inputsOf(PREBUILDS[key]);
    const changed = [...new Set([...Object.keys(now), ...Object.keys(recorded.inputs)])]
      .filter((input) => now[input] !== recorded.inputs[input])
      .map((input) => (recorded.inputs[input] === undefined ? `${input} (new)` : now[input] === undefined ? `${input} (gone)` : input));
    if (changed.length > 0) failures.push(`prebuilds/${key} is stale: changed since it was built: ${changed.join(', ')}; ${rebuild}`);
  }
  if (failures.length > 0) {
    for (const failure of failures) console.error(`check:prebuilds: ${failure}`);
    process.exit(1);
  }
  const floor = Object.entries(FLOOR).map(([family, version]) => `${family}_${version}`).join(', ');
  console.log(`check:prebuilds: ${keys.length} prebuilds, glibc ones at or below ${floor}, macOS ones ${MACOS_MIN}; none stale`);
}

/** Checks files built elsewhere (DIR/KEY) as if they were prebuilds/KEY, without the record. */
function inspectBuilt(dir, keys) {
  for (const key of keys) console.log(`${rel(join(dir, key))}: ${key}, needs ${describe(inspect(key, join(dir, key)).needs)}`);
}

function build() {
  const scripts = Object.keys(packageJson().scripts ?? {}).filter((name) => /^prebuild:[a-z0-9]+$/.test(name));
  const npm = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ['npm'];
  for (const script of scripts) {
    const { seconds } = run(npm[0], [...npm.slice(1), 'run', script], { cwd: root, stdio: 'inherit' });
    console.log(`${script}: ${seconds} s`);
    // Each script records what it made; record again in case it did not.
    record(select([script.slice('prebuild:'.length)]));
  }
  check([]);
}

const [command, ...args] = process.argv.slice(2);
try {
  if (command === 'check') check(args);
  else if (command === 'record' && args.length > 0) record(select(args));
  else if (command === 'inspect' && args.length > 1) inspectBuilt(args[0], args.slice(1));
  else if (command === 'build') build();
  else {
    console.error('usage: prebuilds.mjs build | record NAME… | check [NAME…] | inspect DIR FILE…');
    process.exit(2);
  }
} catch (error) {
  console.error(`prebuilds: ${error.message}`);
  process.exit(1);
}
