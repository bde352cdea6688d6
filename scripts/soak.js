#!/usr/bin/env node
'use strict';

// Soak test: N processes hammer one workspace with random tryAcquire,
// acquire (aborted at random), release, status, isLocked and readExisting
// calls, and check throughout that
//   - never two holders at once: a holder creates a marker file with O_EXCL
//     and increments a shared counter (read, then write) in its critical
//     section; the counter must end equal to the number of critical sections,
//   - readers only ever see complete records that some worker wrote,
//   - every error is one the API documents for that call,
//   - no descriptor is leaked (/proc/self/fd at the end equals the start).
//
// Usage: npm run soak -- [--duration=SECONDS] [--processes=N] [--workspace=DIR]
// Defaults: 60 seconds, 4 processes, a fresh temporary directory. Exits 1 on
// any violation.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { setTimeout: sleep } = require('node:timers/promises');
const { LoopLock, AlreadyLockedError } = require('../dist');

const COUNTER = 'soak-counter';
const MARKER = 'soak-holder';

// A prompt names its writer and a counter, and its padding length follows
// from both, so a record spliced from two writes does not check out. Every
// ninth prompt is longer than a page.
function padding(pid, serial) {
  return serial % 9 === 0 ? 4500 + ((pid + serial) % 101) : (pid * 7 + serial) % 200;
}

function promptOf(pid, serial) {
  return `soak ${pid} #${serial} ${'.'.repeat(padding(pid, serial))}`;
}

const PROMPT = /^soak (\d+) #(\d+) (\.*)$/;

function isWhole(record) {
  const match = PROMPT.exec(record.prompt);
  return (
    match !== null &&
    Number(match[1]) === record.pid &&
    match[3].length === padding(record.pid, Number(match[2])) &&
    record.started instanceof Date &&
    !Number.isNaN(record.started.getTime())
  );
}

function openDescriptors() {
  return fs.readdirSync('/proc/self/fd').length;
}

async function worker(workspace, deadline) {
  const counterPath = path.join(workspace, COUNTER);
  const markerPath = path.join(workspace, MARKER);
  const counts = {};
  const violations = [];
  const count = (key) => (counts[key] = (counts[key] ?? 0) + 1);
  const violation = (text) => {
    count('violations');
    if (violations.length < 20) violations.push(text);
  };
  const describe = (error) => `${error?.constructor?.name} ${error?.code ?? ''} ${error?.message}`;
  let serial = 0;

  function checkHolder(where, record) {
    if (record !== null && !isWhole(record)) violation(`${where} gave a spliced record: ${JSON.stringify(record).slice(0, 100)}`);
  }

  async function criticalSection(guard, hold) {
    try {
      fs.writeFileSync(markerPath, String(process.pid), { flag: 'wx' });
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
      violation(`two holders: ${fs.readFileSync(markerPath, 'utf8')} was inside when ${process.pid} got the lock`);
      guard.release();
      return;
    }
    const value = Number(fs.readFileSync(counterPath, 'utf8'));
    if (hold) await sleep(Math.random() * 3);
    fs.writeFileSync(counterPath, String(value + 1));
    count('criticalSections');
    const status = LoopLock.status(workspace);
    if (!status.locked || status.holder?.pid !== process.pid) {
      violation(`holder ${process.pid} saw status ${JSON.stringify(status)}`);
    }
    if (!guard.isIntact()) violation(`guard of ${process.pid} lost its file: ${guard.state()}`);
    fs.unlinkSync(markerPath);
    guard.release();
  }

  const operations = {
    async tryAcquire() {
      let guard;
      try {
        guard = LoopLock.tryAcquire(workspace, promptOf(process.pid, ++serial));
      } catch (error) {
        if (!(error instanceof AlreadyLockedError)) return violation(`tryAcquire threw ${describe(error)}`);
        count(error.holder === null ? 'tryAcquire.lockedHolderNull' : 'tryAcquire.locked');
        return checkHolder('AlreadyLockedError.holder', error.holder);
      }
      count('tryAcquire.acquired');
      await criticalSection(guard, Math.random() < 0.2);
    },
    async acquire() {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), Math.random() * 10);
      let guard;
      try {
        guard = await LoopLock.acquire(workspace, promptOf(process.pid, ++serial), { signal: controller.signal });
      } catch (error) {
        if (error !== controller.signal.reason) return violation(`acquire rejected with ${describe(error)}`);
        return count('acquire.aborted');
      } finally {
        clearTimeout(timer);
      }
      count('acquire.acquired');
      await criticalSection(guard, Math.random() < 0.5);
    },
    async status() {
      try {
        const status = LoopLock.status(workspace);
        count(status.locked ? 'status.locked' : 'status.free');
        checkHolder('status', status.holder);
      } catch (error) {
        violation(`status threw ${describe(error)}`);
      }
    },
    async isLocked() {
      try {
        count(LoopLock.isLocked(workspace) ? 'isLocked.true' : 'isLocked.false');
      } catch (error) {
        violation(`isLocked threw ${describe(error)}`);
      }
    },
    async readExisting() {
      try {
        const record = LoopLock.readExisting(workspace);
        count(record === null ? 'readExisting.null' : 'readExisting.record');
        if (record !== null) checkHolder('readExisting', record);
      } catch (error) {
        violation(`readExisting threw ${describe(error)}`);
      }
    },
  };
  const names = Object.keys(operations);

  // Warm up and settle before counting descriptors: the first calls load
  // the addon, and the inotify descriptor waits share closes a second after
  // the last wait ends (kInotifyIdleMs in native/waiter.cc), so both counts
  // are taken after longer than that.
  const SETTLE_MS = 1500;
  for (const name of names) await operations[name]();
  await sleep(SETTLE_MS);
  const fdStart = openDescriptors();
  const rssStart = process.memoryUsage().rss;
  let fdMax = fdStart;
  let iterations = 0;
  while (Date.now() < deadline) {
    await operations[names[Math.floor(Math.random() * names.length)]]();
    if (++iterations % 256 === 0) {
      fdMax = Math.max(fdMax, openDescriptors());
      // Let timers (the aborts) and finalizers run between bursts.
      await sleep(0);
    }
  }
  await sleep(SETTLE_MS);
  const fdEnd = openDescriptors();
  if (fdEnd > fdStart) violation(`descriptors grew from ${fdStart} to ${fdEnd}`);
  return {
    pid: process.pid,
    iterations,
    counts,
    violations,
    fdStart,
    fdMax,
    fdEnd,
    rssGrowth: process.memoryUsage().rss - rssStart,
  };
}

function runWorker(workspace, deadline) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [__filename, '--worker', `--workspace=${workspace}`, `--deadline=${deadline}`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) return reject(new Error(`worker ${child.pid} exited with ${code ?? signal}`));
      resolve(JSON.parse(output));
    });
  });
}

async function main() {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '60' },
      processes: { type: 'string', default: '4' },
      workspace: { type: 'string' },
      worker: { type: 'boolean', default: false },
      deadline: { type: 'string' },
    },
  });
  if (values.worker) {
    const result = await worker(values.workspace, Number(values.deadline));
    process.stdout.write(JSON.stringify(result));
    return;
  }
  const seconds = Number(values.duration);
  const processes = Number(values.processes);
  if (!(seconds > 0) || !Number.isInteger(processes) || processes < 1) {
    throw new TypeError('--duration must be a positive number of seconds and --processes a positive integer');
  }
  const workspace = values.workspace ?? fs.mkdtempSync(path.join(os.tmpdir(), 'loop-lock-soak-'));
  fs.writeFileSync(path.join(workspace, COUNTER), '0');
  fs.rmSync(path.join(workspace, MARKER), { force: true });
  console.log(`soak: ${processes} processes for ${seconds} s in ${workspace}`);

  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: processes }, () => runWorker(workspace, started + 1000 * seconds)),
  );
  const elapsed = (Date.now() - started) / 1000;

  const total = (key) => results.reduce((sum, result) => sum + (result.counts[key] ?? 0), 0);
  const counter = Number(fs.readFileSync(path.join(workspace, COUNTER), 'utf8'));
  const sections = total('criticalSections');
  const violations = results.flatMap((result) => result.violations.map((text) => `[${result.pid}] ${text}`));
  if (counter !== sections) violations.push(`counter is ${counter} after ${sections} critical sections`);

  const operations = results.reduce((sum, result) => sum + result.iterations, 0);
  console.log(`operations: ${operations} in ${elapsed.toFixed(1)} s (${Math.round(operations / elapsed)}/s)`);
  console.log(`critical sections: ${sections}, shared counter: ${counter}`);
  const keys = [...new Set(results.flatMap((result) => Object.keys(result.counts)))].sort();
  for (const key of keys) console.log(`  ${key}: ${total(key)}`);
  for (const result of results) {
    console.log(
      `  pid ${result.pid}: descriptors ${result.fdStart} -> ${result.fdEnd} (max ${result.fdMax}), ` +
        `rss ${(result.rssGrowth / 1048576).toFixed(1)} MiB`,
    );
  }
  if (values.workspace === undefined) fs.rmSync(workspace, { recursive: true, force: true });
  if (violations.length > 0) {
    console.log(`FAILED: ${violations.length} violation(s)`);
    for (const text of violations) console.log(`  ${text}`);
    process.exitCode = 1;
  } else {
    console.log('soak: no violations');
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
