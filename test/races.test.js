'use strict';

// Readers racing writers across processes. Writers take and release the lock
// as fast as they can while readers call readExisting, status, isLocked and
// a tryAcquire that mostly loses. Readers may only ever see a complete record
// that some writer wrote, or null.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const { makeWorkspace: workspace } = require('./helpers');

const WORKER = path.join(__dirname, 'fixtures', 'race-worker.js');
// How long each process races at least, once all have started.
const DURATION_MS = 3000;

/**
 * Starts a worker; `line(text)` resolves once it has printed that line,
 * `result` with its report once it exits.
 */
function start(role, dir) {
  const child = spawn(process.execPath, [WORKER, role, dir, String(DURATION_MS)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters = [];
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    stdout += chunk;
    for (const waiter of waiters) waiter();
  });
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const result = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) return reject(new Error(`${role} exited with ${code ?? signal}: ${stderr}`));
      resolve(JSON.parse(stdout.split('\n').filter((line) => line.startsWith('{'))[0]));
    });
  });
  const line = (text) =>
    new Promise((resolve, reject) => {
      const check = () => stdout.split('\n').includes(text) && resolve();
      waiters.push(check);
      check();
      result.then(() => reject(new Error(`${role} exited before printing ${text}`)), reject);
    });
  const send = (text) => child.stdin.write(`${text}\n`);
  return { line, send, result };
}

/**
 * Runs the roles together: each starts racing once all are loaded (however
 * long that takes on a busy or emulated machine), and all stop once each
 * has raced DURATION_MS and seen what proves the race happened.
 */
async function runAll(roles, dir) {
  const workers = roles.map((role) => start(role, dir));
  await Promise.all(workers.map((worker) => worker.line('ready')));
  for (const worker of workers) worker.send('go');
  await Promise.all(workers.map((worker) => worker.line('proved')));
  for (const worker of workers) worker.send('stop');
  return Promise.all(workers.map((worker) => worker.result));
}

function total(results, key) {
  return results.reduce((sum, result) => sum + (result.counts[key] ?? 0), 0);
}

test('readers in other processes never see a torn record or an undocumented error while writers churn', async (t) => {
  const dir = workspace(t);
  const results = await runAll(['writer', 'writer', 'writer', 'reader', 'reader'], dir);
  for (const result of results) assert.deepEqual(result.violations, [], `${result.role} ${result.pid}`);

  // The race must really have happened: writers won and lost, readers saw
  // the lock held with a holder, and saw records.
  assert.ok(total(results, 'writer.acquired') > 0, 'writers acquired');
  assert.ok(total(results, 'writer.lockedWithHolder') > 0, 'writers were refused with a holder');
  assert.ok(total(results, 'status.lockedWithHolder') > 0, 'status saw a holder');
  assert.ok(total(results, 'readExisting.record') > 0, 'readExisting saw records');
  assert.ok(total(results, 'reader.lockedWithHolder') > 0, 'a reader lost tryAcquire to a holder');
  const keys = [...new Set(results.flatMap((result) => Object.keys(result.counts)))].sort();
  for (const key of keys) t.diagnostic(`${key}: ${total(results, key)}`);
});

test('an acquirer alone with probers: how often a probe makes tryAcquire fail spuriously (reported, not asserted)', async (t) => {
  const dir = workspace(t);
  const results = await runAll(['acquirer', 'prober', 'prober'], dir);
  for (const result of results) assert.deepEqual(result.violations, [], `${result.role} ${result.pid}`);
  const attempts = total(results, 'acquirer.acquired') + total(results, 'acquirer.spurious');
  const rawAttempts = total(results, 'raw.acquired') + total(results, 'raw.refused');
  assert.ok(attempts > 0 && total(results, 'prober.probes') > 0);
  const rate = (n, of) => `${n}/${of} = ${((100 * n) / of).toFixed(4)}%`;
  t.diagnostic(`probes: ${total(results, 'prober.probes')}`);
  t.diagnostic(`tryAcquire refused spuriously (with its retries): ${rate(total(results, 'acquirer.spurious'), attempts)}`);
  t.diagnostic(`single flock(LOCK_EX|LOCK_NB) refused by a probe: ${rate(total(results, 'raw.refused'), rawAttempts)}`);
});
