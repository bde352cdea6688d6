// The package as its users get it: the tarball `npm pack` makes, installed
// into a project of its own with install scripts skipped (no compiler: the
// prebuild must load), and the test suite copied beside it, where the
// tests' `../dist` and the fixtures' `../..` lead to the installed copy.
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { root } from './repo.mjs';
import { cleanEnv, run } from './run.mjs';

/** `npm install` as a user with scripts not approved runs it; the specs follow. */
export const INSTALL = ['install', '--ignore-scripts', '--no-audit', '--no-fund'];

/** Packs this checkout into `destination`; returns the tarball's path. */
export function pack(destination) {
  const packed = run('npm', ['pack', '--json', '--pack-destination', destination], { cwd: root, env: cleanEnv() });
  return join(destination, JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')))[0].filename);
}

/** A project directory holding only `manifest` as its package.json; returns it. */
export function project(dir, manifest) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return dir;
}

/** Copies test/ (fixtures, helpers and every test file) to `destination`. */
export function copySuite(destination) {
  cpSync(join(root, 'test'), destination, {
    recursive: true,
    filter: (source) => !source.includes(join('rust-peer', 'target')),
  });
}
