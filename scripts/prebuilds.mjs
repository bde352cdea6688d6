#!/usr/bin/env node
// The prebuilt addons in prebuilds/: build them, record what they were built
// from, and check them.
//
//   node scripts/prebuilds.mjs build           every `prebuild:<os>` npm script, then record and check
//                                              (`npm run prebuilds`)
//   node scripts/prebuilds.mjs record TARGET…  write TARGET's entry in prebuilds.json
//   node scripts/prebuilds.mjs check [TARGET…] (`npm run check:prebuilds`: every target)
//
// `check` fails when a target that must ship is missing; when a .node is not
// for its target's architecture (ELF or PE header); when a Linux one needs a
// symbol version above the floor (objdump -T): GLIBC_2.28, GLIBCXX_3.4.25,
// CXXABI_1.3.11, what Node 20's official binaries need; and when a prebuild is
// stale. Stale means: its bytes are not the ones recorded in prebuilds.json,
// or one of its inputs changed since it was recorded: a file in native/,
// binding.gyp, the node-addon-api or node-gyp locked in package-lock.json
// (and node-api-headers for Windows), or the script
// its `prebuild:<os>` npm script runs. The builds themselves happen in a
// chroot that CI does not make (scripts/prebuild-linux.sh), so the record of
// their inputs is what tells CI they are current.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const MANIFEST = 'prebuilds.json';
const REQUIRED = ['linux-x64', 'linux-arm64', 'win32-x64'];
// The highest symbol version each Linux prebuild may need: glibc 2.28 and
// GCC 8's libstdc++ (Debian 10, Ubuntu 18.10, RHEL 8), as Node 20's own
// official binaries need.
const FLOOR = { GLIBC: '2.28', GLIBCXX: '3.4.25', CXXABI: '1.3.11' };
const ELF_MACHINE = { x64: 62, arm64: 183 };
const PE_MACHINE = { x64: 0x8664, arm64: 0xaa64 };

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const rel = (file) => relative(root, file);
const packageJson = () => JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

function filesUnder(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? filesUnder(join(dir, entry.name)) : [join(dir, entry.name)]))
    .sort();
}

/** The script files an npm script runs (the words of its command that name files here). */
function recipeFiles(os) {
  const command = packageJson().scripts?.[`prebuild:${os}`];
  if (command === undefined) return { command: null, files: [] };
  const files = command
    .split(/\s+/)
    .filter((word) => /[\w-]\.\w+$/.test(word) && existsSync(join(root, word)) && statSync(join(root, word)).isFile());
  return { command, files };
}

/** What a target's bytes depend on, each with a digest. */
function inputsOf(target) {
  const os = target.split('-')[0];
  const inputs = {};
  for (const file of [join(root, 'binding.gyp'), ...filesUnder(join(root, 'native'))]) {
    inputs[rel(file)] = sha256(readFileSync(file));
  }
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
  // The headers the addon includes, and the build files node-gyp generates;
  // for Windows, the def file its import library is made from.
  for (const name of ['node-addon-api', 'node-gyp', ...(os === 'win32' ? ['node-api-headers'] : [])]) {
    const locked = lock.packages?.[`node_modules/${name}`];
    inputs[name] = locked ? `${locked.version} ${locked.integrity}` : 'none';
  }
  const recipe = recipeFiles(os);
  inputs[`npm run prebuild:${os}`] = recipe.command ?? 'none';
  for (const file of recipe.files) inputs[file] = sha256(readFileSync(join(root, file)));
  return inputs;
}

const readManifest = () =>
  existsSync(join(root, MANIFEST)) ? JSON.parse(readFileSync(join(root, MANIFEST), 'utf8')) : { targets: {} };

function record(targets) {
  const manifest = readManifest();
  for (const target of targets) {
    const dir = join(root, 'prebuilds', target);
    const files = filesUnder(dir).filter((file) => file.endsWith('.node'));
    if (files.length === 0) throw new Error(`nothing to record: no .node in ${rel(dir)}`);
    const inspected = files.map((file) => inspect(target, file));
    manifest.targets[target] = {
      files: Object.fromEntries(files.map((file) => [relative(dir, file), sha256(readFileSync(file))])),
      needs: inspected[0].needs,
      inputs: inputsOf(target),
    };
  }
  manifest.targets = Object.fromEntries(Object.entries(manifest.targets).sort(([a], [b]) => a.localeCompare(b)));
  const text = {
    about:
      'Written by `npm run prebuilds`: each prebuild, its digest, the symbol versions it needs and the digests of what it was built from. `npm run check:prebuilds` fails when they no longer match.',
    ...manifest,
  };
  writeFileSync(join(root, MANIFEST), `${JSON.stringify(text, null, 2)}\n`);
  console.log(`recorded ${targets.join(', ')} in ${MANIFEST}`);
}

const compareVersions = (a, b) => {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  }
  return 0;
};

/** The objdump that reads this architecture's ELF files. */
function objdumpFor(arch) {
  const cross = { arm64: 'aarch64-linux-gnu-objdump' }[arch];
  for (const tool of [cross, 'objdump'].filter(Boolean)) {
    if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0) return tool;
  }
  throw new Error('objdump not found: apt-get install binutils');
}

/**
 * A prebuild's format, architecture and, for ELF files, the highest version
 * of each versioned symbol family it needs. Throws what is wrong.
 */
function inspect(target, file) {
  const [os, arch] = target.split('-');
  const bytes = readFileSync(file);
  const problems = [];
  let needs = null;
  if (bytes.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) {
    const is64 = bytes[4] === 2;
    const little = bytes[5] === 1;
    const machine = little ? bytes.readUInt16LE(18) : bytes.readUInt16BE(18);
    if (os !== 'linux') problems.push(`an ELF file in a ${os} target`);
    if (!is64 || !little || machine !== ELF_MACHINE[arch]) {
      problems.push(`ELF machine ${machine} (${is64 ? 64 : 32}-bit), not ${arch}'s ${ELF_MACHINE[arch]}`);
    }
    const dump = spawnSync(objdumpFor(arch), ['-T', file], { encoding: 'utf8' });
    if (dump.status !== 0) throw new Error(`objdump -T ${rel(file)}: ${dump.stderr}`);
    needs = {};
    for (const [, family, version] of dump.stdout.matchAll(/\b(GLIBC|GLIBCXX|CXXABI|GCC)_([0-9][0-9.]*)\b/g)) {
      if (needs[family] === undefined || compareVersions(version, needs[family]) > 0) needs[family] = version;
    }
    for (const [family, highest] of Object.entries(FLOOR)) {
      if (needs[family] !== undefined && compareVersions(needs[family], highest) > 0) {
        problems.push(`needs ${family}_${needs[family]}, above the floor ${family}_${highest}`);
      }
    }
    if (needs.GLIBC === undefined) problems.push('no GLIBC symbol versions: is it linked against glibc?');
    needs = Object.fromEntries(Object.entries(needs).sort());
  } else if (bytes.subarray(0, 2).toString('latin1') === 'MZ') {
    const pe = bytes.readUInt32LE(0x3c);
    const machine = bytes.subarray(pe, pe + 4).toString('latin1') === 'PE\0\0' ? bytes.readUInt16LE(pe + 4) : -1;
    if (os !== 'win32') problems.push(`a PE file in a ${os} target`);
    if (machine !== PE_MACHINE[arch]) problems.push(`PE machine 0x${machine.toString(16)}, not ${arch}'s`);
  } else {
    problems.push('neither an ELF nor a PE file');
  }
  if (problems.length > 0) throw new Error(`${rel(file)}: ${problems.join('; ')}`);
  return { needs };
}

/** Checks `only` (every target when empty): one `prebuild:<os>` script checks its own. */
function check(only = []) {
  const manifest = readManifest();
  const wanted = (target) => only.length === 0 || only.includes(target);
  const failures = [];
  const prebuilds = join(root, 'prebuilds');
  const shipped = existsSync(prebuilds)
    ? readdirSync(prebuilds, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => entry.name)
    : [];
  for (const target of new Set([...REQUIRED, ...Object.keys(manifest.targets)])) {
    if (wanted(target) && !shipped.includes(target)) failures.push(`prebuilds/${target} is missing`);
  }
  for (const target of shipped.sort().filter(wanted)) {
    const dir = join(prebuilds, target);
    const files = filesUnder(dir);
    if (files.length === 0) failures.push(`prebuilds/${target} is empty`);
    const recorded = manifest.targets[target];
    const rebuild = `run \`npm run prebuilds\` (or prebuild:${target.split('-')[0]}) and commit the result`;
    if (recorded === undefined) failures.push(`prebuilds/${target} is not recorded in ${MANIFEST}: ${rebuild}`);
    for (const file of files) {
      const name = relative(dir, file);
      if (!file.endsWith('.node')) {
        failures.push(`${rel(file)}: only .node files belong in prebuilds/`);
        continue;
      }
      try {
        const { needs } = inspect(target, file);
        const shown = needs ? Object.entries(needs).map(([family, v]) => `${family}_${v}`).join(' ') : 'no glibc';
        console.log(`${rel(file)}: ${target}, needs ${shown}`);
      } catch (error) {
        failures.push(error.message);
      }
      if (recorded !== undefined && recorded.files[name] !== sha256(readFileSync(file))) {
        failures.push(`${rel(file)} is not the file recorded in ${MANIFEST}: ${rebuild}`);
      }
    }
    if (recorded === undefined) continue;
    for (const name of Object.keys(recorded.files)) {
      if (!existsSync(join(dir, name))) failures.push(`prebuilds/${target}/${name} is recorded but missing`);
    }
    const now = inputsOf(target);
    const changed = [...new Set([...Object.keys(now), ...Object.keys(recorded.inputs)])]
      .filter((input) => now[input] !== recorded.inputs[input])
      .map((input) => (recorded.inputs[input] === undefined ? `${input} (new)` : now[input] === undefined ? `${input} (gone)` : input));
    if (changed.length > 0) {
      failures.push(`prebuilds/${target} is stale: changed since it was built: ${changed.join(', ')}; ${rebuild}`);
    }
  }
  if (failures.length > 0) {
    for (const failure of failures) console.error(`check:prebuilds: ${failure}`);
    process.exit(1);
  }
  console.log(`check:prebuilds: ${shipped.filter(wanted).length} targets, each at or below ${Object.entries(FLOOR).map(([f, v]) => `${f}_${v}`).join(', ')} where it links glibc, none stale`);
}

function build() {
  const scripts = Object.keys(packageJson().scripts ?? {}).filter((name) => /^prebuild:[a-z0-9]+$/.test(name));
  const npm = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ['npm'];
  for (const script of scripts) {
    const started = performance.now();
    const run = spawnSync(npm[0], [...npm.slice(1), 'run', script], { cwd: root, stdio: 'inherit' });
    if (run.status !== 0) process.exit(run.status ?? 1);
    console.log(`${script}: ${((performance.now() - started) / 1000).toFixed(0)} s`);
    const os = script.slice('prebuild:'.length);
    const targets = readdirSync(join(root, 'prebuilds')).filter((target) => target.startsWith(`${os}-`));
    record(targets);
  }
  check();
}

const [command, ...args] = process.argv.slice(2);
if (command === 'check') check(args);
else if (command === 'record' && args.length > 0) record(args);
else if (command === 'build') build();
else {
  console.error('usage: prebuilds.mjs build | record TARGET… | check');
  process.exit(2);
}
