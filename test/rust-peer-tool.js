'use strict';
// Builds and starts the Rust peer (test/rust-peer): the reference's
// LockMetadata, serde_json, chrono and flock, from Debian's packaged crates.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { startChild } = require('./helpers');

// Debian's toolchain and crate directory, never a rustup one: the crate's
// .cargo/config.toml replaces crates.io with that directory, offline.
const CARGO = '/usr/bin/cargo';
const RUSTC = '/usr/bin/rustc';
const REGISTRY = '/usr/share/cargo/registry';
const CRATES = ['serde', 'serde_derive', 'serde_json', 'chrono', 'libc'];
const CRATE_DIR = path.join(__dirname, 'rust-peer');
// One per checkout: two checkouts of different versions (worktrees) must not
// run each other's peer.
const CHECKOUT = crypto.createHash('sha256').update(CRATE_DIR).digest('hex').slice(0, 12);
const TARGET_DIR = path.join(os.tmpdir(), `loop-lock-rust-peer-target-${CHECKOUT}`);
const PEER = path.join(TARGET_DIR, 'release', 'rust-peer');

/** Why the peer cannot be built here (a reason to skip), or false. */
function missingToolchain() {
  if (!fs.existsSync(CARGO) || !fs.existsSync(RUSTC)) return "Debian's cargo and rustc are not installed";
  const present = fs.existsSync(REGISTRY) ? fs.readdirSync(REGISTRY) : [];
  const absent = CRATES.filter((name) => !present.some((dir) => new RegExp(`^${name}-\\d`).test(dir)));
  return absent.length > 0 ? `Debian's Rust crates are not installed: ${absent.join(', ')}` : false;
}

/** Builds the peer (cached in TARGET_DIR); fails the caller's hook when cargo does. */
function buildPeer() {
  // The toolchain is not under test: rustc does not survive the ASan runtime
  // that test:sanitize preloads into every process, so it runs without it.
  const { LD_PRELOAD, ASAN_OPTIONS, LSAN_OPTIONS, UBSAN_OPTIONS, ...env } = process.env;
  // A cold build compiles serde_derive, syn and chrono: about a minute.
  const build = spawnSync(CARGO, ['build', '--release', '--offline', '--quiet'], {
    cwd: CRATE_DIR, // cargo reads .cargo/config.toml from its working directory
    env: { ...env, RUSTC, CARGO_TARGET_DIR: TARGET_DIR },
    encoding: 'utf8',
    timeout: 10 * 60 * 1000,
  });
  assert.equal(build.status, 0, `cargo build failed:\n${build.stderr}`);
}

/** The peer process; `ask(event, ...command)` sends a command and resolves with the reply `event`. */
function startPeer(t) {
  const peer = startChild(t, null, [], { command: PEER });
  peer.ask = (event, ...command) => {
    peer.send(JSON.stringify(command));
    return peer.next(event);
  };
  return peer;
}

module.exports = { buildPeer, missingToolchain, startPeer };
