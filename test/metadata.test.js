'use strict';
// The record is shared with the Rust reference (serde_json + chrono), so its
// bytes are pinned here, and every form that side writes must read back.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const { AlreadyLockedError, LockParseError, LoopLock, MAX_METADATA_BYTES } = require('../dist');
const { lockPathIn, makeWorkspace } = require('./helpers');

/** Writes `text` as the workspace's lock file. */
function writeLockFile(workspace, text) {
  fs.mkdirSync(path.join(workspace, '.ralph'), { recursive: true });
  fs.writeFileSync(lockPathIn(workspace), text);
}

/**
 * A string the way serde_json's serializer escapes it: `"` and `\`, the
 * short escapes \b \t \n \f \r, every other control character as \u00xx
 * with lowercase hex, and nothing else (not DEL, not U+2028, not '/').
 */
function serdeString(text) {
  const short = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r', 34: '\\"', 92: '\\\\' };
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0);
    if (short[code] !== undefined) out += short[code];
    else if (code < 0x20) out += `\\u00${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** serde_json::to_string_pretty of the reference's LockMetadata. */
function serdePretty(pid, started, prompt) {
  return `{\n  "pid": ${pid},\n  "started": "${started}",\n  "prompt": ${serdeString(prompt)}\n}`;
}

test('the record is byte for byte what serde_json to_string_pretty writes', (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'implement auth');
  try {
    const bytes = fs.readFileSync(guard.lockPath, 'utf8');
    assert.equal(bytes, serdePretty(process.pid, guard.metadata.started.toISOString(), 'implement auth'));
    assert.match(bytes, /^\{\n {2}"pid": \d+,\n {2}"started": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",\n {2}"prompt": "implement auth"\n\}$/);
  } finally {
    guard.release();
  }
});

test('control characters, quotes and non-ASCII in a prompt are escaped exactly as serde_json does', (t) => {
  const workspace = makeWorkspace(t);
  let controls = '';
  for (let c = 0; c < 0x20; c++) controls += String.fromCharCode(c);
  const prompt = `${controls} "quoted" back\\slash /slash \u007f é 中文 😀 \u2028\u2029 end`;
  const guard = LoopLock.tryAcquire(workspace, prompt);
  try {
    const bytes = fs.readFileSync(guard.lockPath, 'utf8');
    assert.equal(bytes, serdePretty(process.pid, guard.metadata.started.toISOString(), prompt));
    assert.ok(bytes.includes('\\u0000\\u0001'), 'NUL and SOH are \\u escapes');
    assert.ok(bytes.includes('\\b\\t\\n\\u000b\\f\\r'), 'the short escapes are used where JSON has them');
    assert.ok(bytes.includes('\\u001f'), 'hex digits are lowercase');
    assert.equal(bytes.split('\n').length, 5, 'a newline in the prompt never breaks the record into more lines');
  } finally {
    guard.release();
  }
});

test('a prompt with control characters reads back unchanged through every reader', (t) => {
  const workspace = makeWorkspace(t);
  const prompt = 'line one\nline two\ttabbed\r\n\u0000nul "q" \\ 😀 \u2028';
  const guard = LoopLock.tryAcquire(workspace, prompt);
  try {
    assert.equal(LoopLock.readExisting(workspace).prompt, prompt);
    assert.equal(LoopLock.status(workspace).holder.prompt, prompt);
    assert.throws(
      () => LoopLock.tryAcquire(workspace, 'other'),
      (error) => error instanceof AlreadyLockedError && error.holder.prompt === prompt,
    );
  } finally {
    guard.release();
  }
});

test('an empty prompt is a valid record', (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, '');
  guard.release();
  assert.equal(LoopLock.readExisting(workspace).prompt, '');
  assert.ok(fs.readFileSync(guard.lockPath, 'utf8').endsWith('"prompt": ""\n}'));
});

test('a prompt with a lone surrogate is a TypeError and touches no file', (t) => {
  const workspace = makeWorkspace(t);
  for (const prompt of ['\ud800', 'tail \udc00', 'a\ud83d b']) {
    assert.throws(() => LoopLock.tryAcquire(workspace, prompt), TypeError);
    assert.throws(() => LoopLock.acquireBlocking(workspace, prompt), TypeError);
  }
  assert.deepEqual(fs.readdirSync(workspace), []);
});

test('a lone surrogate prompt is refused without disturbing an existing record', (t) => {
  const workspace = makeWorkspace(t);
  LoopLock.tryAcquire(workspace, 'kept').release();
  const before = fs.readFileSync(lockPathIn(workspace));
  assert.throws(() => LoopLock.tryAcquire(workspace, '\udfff'), TypeError);
  assert.deepEqual(fs.readFileSync(lockPathIn(workspace)), before);
  assert.equal(LoopLock.isLocked(workspace), false);
});

// The record around the prompt's JSON: the frame, the pid's digits and a
// 24-byte time (native/record.cc).
const recordOverhead = () => 44 + String(process.pid).length + 24;

test('a record of exactly MAX_METADATA_BYTES is written, read back and named by status; one byte more is a RangeError naming the path', async (t) => {
  const workspace = makeWorkspace(t);
  assert.equal(MAX_METADATA_BYTES, 1024 * 1024);
  // JSON adds the two quotes.
  const largest = 'x'.repeat(MAX_METADATA_BYTES - recordOverhead() - 2);
  const guard = LoopLock.tryAcquire(workspace, largest);
  assert.equal(fs.statSync(guard.lockPath).size, MAX_METADATA_BYTES);
  assert.equal(LoopLock.status(workspace).holder.prompt, largest);
  assert.equal(LoopLock.readExisting(workspace, { strict: true }).prompt, largest);
  guard.release();
  assert.equal(LoopLock.readExisting(workspace).prompt, largest);

  const before = fs.readFileSync(guard.lockPath);
  const tooLarge = (error) =>
    error instanceof RangeError &&
    error.message.includes(guard.lockPath) &&
    error.message.includes(`${MAX_METADATA_BYTES + 1} bytes`);
  assert.throws(() => LoopLock.tryAcquire(workspace, `${largest}x`), tooLarge);
  assert.throws(() => LoopLock.acquireBlocking(workspace, `${largest}x`), tooLarge);
  await assert.rejects(LoopLock.acquire(workspace, `${largest}x`), tooLarge);
  assert.deepEqual(fs.readFileSync(guard.lockPath), before, 'a refused prompt leaves the file alone');
  assert.equal(LoopLock.isLocked(workspace), false);
});

test('the prompt bound counts encoded bytes, not characters', (t) => {
  const workspace = makeWorkspace(t);
  // 3 bytes each in UTF-8; 6 bytes each once escaped.
  assert.throws(() => LoopLock.tryAcquire(workspace, '€'.repeat(MAX_METADATA_BYTES / 2)), RangeError);
  assert.throws(() => LoopLock.tryAcquire(workspace, '\u0001'.repeat(MAX_METADATA_BYTES / 4)), RangeError);
  assert.equal(fs.existsSync(lockPathIn(workspace)), false);
});

test('a record exactly as the Rust reference writes it (9 fractional digits) reads back', (t) => {
  const workspace = makeWorkspace(t);
  writeLockFile(workspace, serdePretty(4242, '2025-01-02T03:04:05.123456789Z', 'implement auth'));
  assert.deepEqual(LoopLock.readExisting(workspace), {
    pid: 4242,
    started: new Date('2025-01-02T03:04:05.123Z'),
    prompt: 'implement auth',
  });
});

for (const [label, started, iso] of [
  ['0 fractional digits', '2024-05-06T07:08:09Z', '2024-05-06T07:08:09.000Z'],
  ['3 fractional digits', '2024-05-06T07:08:09.120Z', '2024-05-06T07:08:09.120Z'],
  ['6 fractional digits', '2024-05-06T07:08:09.123456Z', '2024-05-06T07:08:09.123Z'],
  ['9 fractional digits, not rounded up', '2024-05-06T07:08:09.999999999Z', '2024-05-06T07:08:09.999Z'],
  ['a +00:00 offset', '2024-05-06T07:08:09.5+00:00', '2024-05-06T07:08:09.500Z'],
  ['a positive offset', '2024-05-06T07:08:09+05:30', '2024-05-06T01:38:09.000Z'],
  ['a negative offset across midnight', '2024-05-06T22:00:00-03:00', '2024-05-07T01:00:00.000Z'],
  ['a leap day', '2024-02-29T00:00:00Z', '2024-02-29T00:00:00.000Z'],
]) {
  test(`a started timestamp with ${label} is read as ${iso}`, (t) => {
    const workspace = makeWorkspace(t);
    writeLockFile(workspace, serdePretty(7, started, 'p'));
    assert.equal(LoopLock.readExisting(workspace).started.toISOString(), iso);
  });
}

test('unknown fields are ignored and field order does not matter', (t) => {
  const workspace = makeWorkspace(t);
  writeLockFile(
    workspace,
    JSON.stringify({
      host: 'build-3',
      prompt: 'p',
      extra: { nested: [1, 2, { deep: null }] },
      started: '2024-05-06T07:08:09Z',
      pid: 99,
      version: 2,
    }),
  );
  assert.deepEqual(LoopLock.readExisting(workspace), {
    pid: 99,
    started: new Date('2024-05-06T07:08:09Z'),
    prompt: 'p',
  });
});

test('compact JSON and a trailing newline are accepted', (t) => {
  const workspace = makeWorkspace(t);
  writeLockFile(workspace, '{"pid":1,"started":"2024-05-06T07:08:09Z","prompt":"c"}\n');
  assert.equal(LoopLock.readExisting(workspace).prompt, 'c');
});

test('a shorter record over a longer one, before the truncate, reads as the new record', (t) => {
  // The holder writes in place and then truncates: for a moment the file is
  // the new record followed by the tail of the old one.
  const workspace = makeWorkspace(t);
  const fresh = serdePretty(2, '2024-05-06T07:08:09Z', 'new');
  const old = serdePretty(1, '2024-05-06T07:08:09Z', 'a much longer old prompt that leaves a tail');
  writeLockFile(workspace, fresh + old.slice(fresh.length));
  assert.deepEqual(LoopLock.readExisting(workspace), { pid: 2, started: new Date('2024-05-06T07:08:09Z'), prompt: 'new' });
});

const wrongRecords = {
  'pid as a string': { pid: '12', started: '2024-05-06T07:08:09Z', prompt: 'p' },
  'negative pid': { pid: -1, started: '2024-05-06T07:08:09Z', prompt: 'p' },
  'fractional pid': { pid: 1.5, started: '2024-05-06T07:08:09Z', prompt: 'p' },
  'pid beyond u32': { pid: 4294967296, started: '2024-05-06T07:08:09Z', prompt: 'p' },
  'pid missing': { started: '2024-05-06T07:08:09Z', prompt: 'p' },
  'started as a number': { pid: 1, started: 1714979289000, prompt: 'p' },
  'started not a timestamp': { pid: 1, started: 'yesterday', prompt: 'p' },
  'started without a zone': { pid: 1, started: '2024-05-06T07:08:09', prompt: 'p' },
  'started with month 13': { pid: 1, started: '2024-13-06T07:08:09Z', prompt: 'p' },
  'started on February 30': { pid: 1, started: '2024-02-30T07:08:09Z', prompt: 'p' },
  'started with hour 24': { pid: 1, started: '2024-05-06T24:00:00Z', prompt: 'p' },
  'started missing': { pid: 1, prompt: 'p' },
  'prompt as null': { pid: 1, started: '2024-05-06T07:08:09Z', prompt: null },
  'prompt as a number': { pid: 1, started: '2024-05-06T07:08:09Z', prompt: 5 },
  'prompt as an array': { pid: 1, started: '2024-05-06T07:08:09Z', prompt: ['p'] },
  'prompt missing': { pid: 1, started: '2024-05-06T07:08:09Z' },
  'a top-level array': [1, '2024-05-06T07:08:09Z', 'p'],
  'a top-level string': 'pid 1',
  'a top-level null': null,
  'a top-level number': 42,
};
for (const [label, value] of Object.entries(wrongRecords)) {
  test(`a record with ${label} reads as null, and strictly as a LockParseError naming the path`, (t) => {
    const workspace = makeWorkspace(t);
    writeLockFile(workspace, JSON.stringify(value, null, 2));
    assert.equal(LoopLock.readExisting(workspace), null);
    assert.throws(
      () => LoopLock.readExisting(workspace, { strict: true }),
      (error) =>
        error instanceof LockParseError && error.code === 'EPARSE' && error.message.includes(lockPathIn(workspace)),
    );
  });
}

test('a held lock whose record is not readable yet gives AlreadyLockedError with holder null', (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'holder');
  try {
    // What another holder shows between locking and writing its record:
    // an empty file, or half a record.
    for (const text of ['', '{\n  "pid": 12,\n  "sta']) {
      fs.writeFileSync(guard.lockPath, text);
      assert.throws(
        () => LoopLock.tryAcquire(workspace, 'second'),
        (error) => error instanceof AlreadyLockedError && error.holder === null && error.message.includes(guard.lockPath),
      );
      assert.deepEqual(LoopLock.status(workspace), { locked: true, holder: null });
    }
  } finally {
    guard.release();
  }
});
