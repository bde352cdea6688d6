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
const DURATION_MS = 3000;

function run(role, dir, startAt) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, role, dir, String(startAt), String(DURATION_MS)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) return reject(new Error(`${role} exited with ${code ?? signal}: ${stderr}`));
      resolve(JSON.parse(stdout));
    });
  });
}

async function runAll(roles, dir) {
  // Processes take a while to start; begin together so the phases overlap.
  const startAt = Date.now() + 1500;
  return Promise.all(roles.map((role) => run(role, dir, startAt)));
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
