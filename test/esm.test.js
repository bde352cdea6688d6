'use strict';

const assert = require('node:assert/strict');
const { test } = require('node:test');
const loopLock = require('../dist');

test('the ES module entry exports exactly the CommonJS exports', async () => {
  const esm = await import('../dist/index.mjs');
  assert.deepEqual(Object.keys(esm).sort(), Object.keys(loopLock).sort());
});

test('the ES module entry hands out the CommonJS objects themselves, so both share one module state', async () => {
  const esm = await import('../dist/index.mjs');
  for (const name of Object.keys(loopLock)) {
    assert.equal(esm[name], loopLock[name], name);
  }
});
