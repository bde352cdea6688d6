'use strict';

// Properties over generated inputs (fast-check): whatever bytes the lock
// file holds, readers answer with a valid record, null or (strictly) LockParseError and
// nothing else; whatever prompt a caller passes, it comes back exactly, or
// the call fails with a TypeError or RangeError before touching the file.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const fc = require('fast-check');
const { LoopLock, AlreadyLockedError, LockParseError, MAX_METADATA_BYTES } = require('../dist');
const { native } = require('../dist/native.js');
const { makeWorkspace } = require('./helpers');

function lockPath(dir) {
  return path.join(dir, '.ralph', 'loop.lock');
}

function assertValidRecord(record) {
  assert.equal(typeof record, 'object');
  assert.ok(Number.isInteger(record.pid) && record.pid >= 0 && record.pid <= 0xffffffff, `pid ${record.pid}`);
  assert.ok(record.started instanceof Date && !Number.isNaN(record.started.getTime()), 'started');
  assert.equal(typeof record.prompt, 'string');
}

function recordText(pid, started, prompt) {
  return `{\n  "pid": ${pid},\n  "started": "${started}",\n  "prompt": ${JSON.stringify(prompt)}\n}`;
}

const anyPrompt = fc.string({ unit: 'binary', maxLength: 40 });
const validRecord = fc
  .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.date({ noInvalidDate: true }), anyPrompt)
  .filter(([, date]) => date.getUTCFullYear() >= 0 && date.getUTCFullYear() <= 9999)
  .map(([pid, date, prompt]) => recordText(pid, date.toISOString(), prompt));

// Bytes a lock file can end up holding: noise, JSON of any shape, records
// with fields of the wrong type, records cut short or with a tail, and the
// spellings of timestamps and numbers the parser must think about.
const fileBytes = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.json().map((text) => Buffer.from(text)),
  fc
    .record({ pid: fc.anything(), started: fc.anything(), prompt: fc.anything() }, { requiredKeys: [] })
    .map((value) => Buffer.from(JSON.stringify(value, null, 2) ?? '')),
  fc
    .tuple(
      fc.constantFrom('0', '-1', '4294967296', '1.5', '1e3', '"12"', 'null', '123456789012345678901234567890'),
      fc.constantFrom(
        '2025-01-01T00:00:00Z',
        '2025-01-01T00:00:00.123456789Z',
        '2025-01-01T00:00:00+23:59',
        '2025-02-30T00:00:00Z',
        '2025-01-01 00:00:00z',
        '+002025-01-01T00:00:00Z',
        '2025-01-01T24:00:00Z',
        '',
      ),
      anyPrompt,
    )
    .map(([pid, started, prompt]) =>
      Buffer.from(`{\n  "pid": ${pid},\n  "started": "${started}",\n  "prompt": ${JSON.stringify(prompt)}\n}`),
    ),
  fc.tuple(validRecord, fc.nat()).map(([text, cut]) => Buffer.from(text).subarray(0, cut % (text.length + 1))),
  fc.tuple(validRecord, fc.uint8Array({ maxLength: 80 })).map(([text, tail]) => Buffer.concat([Buffer.from(text), tail])),
  fc.tuple(validRecord, fc.constantFrom('\ufeff', ' ', '\n', '\0')).map(([text, pad]) => Buffer.from(pad + text)),
);

// A raw exclusive flock from another open file description: the lock is
// held while the file holds whatever the property wrote.
function holdRaw(file) {
  const binding = native();
  const handle = binding.open(file, true);
  assert.equal(binding.tryLock(handle, false), true);
  return () => binding.close(handle);
}

test('any bytes in the lock file: readExisting gives a valid record or null, and strictly the same or LockParseError', (t) => {
  const dir = makeWorkspace(t);
  fs.mkdirSync(path.join(dir, '.ralph'));
  fc.assert(
    fc.property(fileBytes, (bytes) => {
      fs.writeFileSync(lockPath(dir), bytes);
      const record = LoopLock.readExisting(dir);
      if (record !== null) assertValidRecord(record);
      let strict;
      try {
        strict = LoopLock.readExisting(dir, { strict: true });
      } catch (error) {
        assert.ok(error instanceof LockParseError, `${error && error.name}: ${error && error.message}`);
        assert.equal(error.code, 'EPARSE');
        assert.ok(error.message.includes(lockPath(dir)));
        assert.equal(record, null);
        return;
      }
      assert.deepEqual(strict, record);
    }),
    { numRuns: 500 },
  );
});

test('any bytes in a held lock file: status and a losing tryAcquire give the holder or null, never throw otherwise', (t) => {
  const dir = makeWorkspace(t);
  fs.mkdirSync(path.join(dir, '.ralph'));
  fs.writeFileSync(lockPath(dir), '');
  const release = holdRaw(lockPath(dir));
  t.after(release);
  fc.assert(
    fc.property(fileBytes, (bytes) => {
      fs.writeFileSync(lockPath(dir), bytes);
      const status = LoopLock.status(dir);
      assert.equal(status.locked, true);
      if (status.holder !== null) assertValidRecord(status.holder);
      assert.throws(
        () => LoopLock.tryAcquire(dir, 'loses'),
        (error) => error instanceof AlreadyLockedError && (error.holder === null || assertValidRecord(error.holder) === undefined),
      );
      // The holder a reader reports is what readExisting parses when it
      // names the holder (this process), or nothing.
      const existing = LoopLock.readExisting(dir);
      assert.deepEqual(status.holder, existing?.pid === process.pid ? existing : null);
    }),
    { numRuns: 300 },
  );
});

test('any well-formed record text is read back field for field', (t) => {
  const dir = makeWorkspace(t);
  fs.mkdirSync(path.join(dir, '.ralph'));
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.date({ min: new Date(0), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }), anyPrompt, (pid, started, prompt) => {
      fs.writeFileSync(lockPath(dir), recordText(pid, started.toISOString(), prompt));
      assert.deepEqual(LoopLock.readExisting(dir), { pid, started, prompt });
    }),
    { numRuns: 300 },
  );
});

// What a prompt must be to be written: well-formed Unicode (serde_json
// refuses lone surrogates) whose record stays within MAX_METADATA_BYTES.
function expectedOutcome(prompt) {
  if (!prompt.isWellFormed()) return TypeError;
  // The record: 44 bytes of frame, the pid's digits, a 24-byte time and the prompt's JSON.
  const record = 44 + String(process.pid).length + 24 + Buffer.byteLength(JSON.stringify(prompt));
  if (record > MAX_METADATA_BYTES) return RangeError;
  return null;
}

function snapshot(file) {
  try {
    const { ino } = fs.statSync(file);
    return { ino, bytes: fs.readFileSync(file) };
  } catch (error) {
    if (error.code === 'ENOENT') return null;
    throw error;
  }
}

function checkRoundTrip(dir, prompt) {
  const before = snapshot(lockPath(dir));
  const expected = expectedOutcome(prompt);
  if (expected !== null) {
    assert.throws(
      () => LoopLock.tryAcquire(dir, prompt),
      (error) => error.constructor === expected && /prompt/.test(error.message),
    );
    assert.deepEqual(snapshot(lockPath(dir)), before, 'a refused prompt leaves the file as it was');
    return;
  }
  const guard = LoopLock.tryAcquire(dir, prompt);
  try {
    assert.equal(guard.metadata.prompt, prompt);
    assert.equal(LoopLock.readExisting(dir).prompt, prompt);
    assert.equal(LoopLock.status(dir).holder.prompt, prompt);
    assert.equal(JSON.parse(fs.readFileSync(lockPath(dir), 'utf8')).prompt, prompt);
  } finally {
    guard.release();
  }
}

// Code units of every kind: ASCII, controls, BMP, astral pairs, and lone
// surrogates of either half.
const codeUnit = fc.oneof(
  fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0x80, max: 0xffff }).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0x10000, max: 0x10ffff }).map((c) => String.fromCodePoint(c)),
  fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff', '\u2028', '\u2029', '\ufeff', '\0', '"', '\\'),
);

test('any prompt round-trips through tryAcquire and readExisting, or is refused before the file is touched', (t) => {
  const dir = makeWorkspace(t);
  let refused = 0;
  fc.assert(
    fc.property(fc.string({ unit: codeUnit, maxLength: 200 }), (prompt) => {
      if (expectedOutcome(prompt) !== null) refused++;
      checkRoundTrip(dir, prompt);
    }),
    { numRuns: 500 },
  );
  assert.ok(refused > 0, 'some generated prompts had lone surrogates');
});

test('prompts around the size limit (up to about 1 MiB) round-trip or fail with RangeError, file untouched', (t) => {
  const dir = makeWorkspace(t);
  const budget = MAX_METADATA_BYTES - 44 - String(process.pid).length - 24;
  // A short pattern repeated to land within a few copies of the limit, on
  // either side: JSON escaping makes the encoded size differ per pattern.
  const nearLimit = fc
    .tuple(fc.string({ unit: codeUnit, minLength: 1, maxLength: 6 }), fc.integer({ min: -3, max: 3 }))
    .filter(([unit]) => unit.isWellFormed())
    .map(([unit, offset]) => {
      const perCopy = Buffer.byteLength(JSON.stringify(unit)) - 2;
      return unit.repeat(Math.max(0, Math.floor((budget - 2) / perCopy) + offset));
    });
  const outcomes = new Set();
  fc.assert(
    fc.property(nearLimit, (prompt) => {
      outcomes.add(expectedOutcome(prompt));
      checkRoundTrip(dir, prompt);
    }),
    { numRuns: 40 },
  );
  assert.ok(outcomes.has(null) && outcomes.has(RangeError), 'both sides of the limit were tried');
});

// formatTimestamp is exported by test builds only (npm test, test:sanitize);
// a release build, such as the prebuild the installed-package suites load,
// leaves it out.
const { formatTimestamp } = native();
test('records stamp times exactly as Date#toISOString writes them, over the whole Date range', {
  skip: formatTimestamp === undefined && 'the addon is a release build, without formatTimestamp',
}, () => {
  const edges = [
    0, -1, 1, 951782400000 /* 2000-02-29 */, 4107542400000 /* 2100-03-01 */, 253402300799999 /* 9999 ends */,
    253402300800000 /* +010000 */, -62167219200000 /* year 0 */, -62167219200001 /* -000001 */, 8.64e15, -8.64e15,
  ];
  for (const ms of edges) assert.equal(formatTimestamp(ms), new Date(ms).toISOString(), `ms ${ms}`);
  // Far outside Date's range: no overflow (the sanitizer run would report
  // one), and still a timestamp's shape.
  for (const ms of [-1e300, 1e300, -(2 ** 63), 2 ** 63]) assert.match(formatTimestamp(ms), /^[+-]\d{6,}-\d\d-\d\dT/);
  fc.assert(
    fc.property(fc.integer({ min: -8.64e15, max: 8.64e15 }), (ms) => {
      assert.equal(formatTimestamp(ms), new Date(ms).toISOString());
    }),
    { numRuns: 20000 },
  );
});

test('timestamps in loop-lock\'s own form parse exactly as Date does, and malformed ones as before', () => {
  const { parseTimestamp } = require('../dist/metadata.js');
  // What the parser did before it read the form field by field.
  const viaDate = (text) => {
    const date = new Date(text);
    return !Number.isNaN(date.getTime()) && date.toISOString() === text ? date.getTime() : null;
  };
  fc.assert(
    fc.property(fc.integer({ min: -62167219200000, max: 253402300799999 }), (ms) => {
      const text = new Date(ms).toISOString();
      assert.equal(parseTimestamp(text)?.getTime(), ms, text);
    }),
    { numRuns: 20000 },
  );
  // Own-form strings with any digits in any field: valid or not, same answer.
  const field = (n) => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: n, maxLength: n });
  fc.assert(
    fc.property(fc.tuple(field(4), field(2), field(2), field(2), field(2), field(2), field(3)), ([y, mo, d, h, mi, s, ms]) => {
      const text = `${y}-${mo}-${d}T${h}:${mi}:${s}.${ms}Z`;
      assert.equal(parseTimestamp(text)?.getTime() ?? null, viaDate(text), text);
    }),
    { numRuns: 20000 },
  );
  for (const text of ['0000-02-29T00:00:00.000Z', '1900-02-29T00:00:00.000Z', '0099-12-31T23:59:59.999Z', '2024-02-29T12:00:00.000Z']) {
    assert.equal(parseTimestamp(text)?.getTime() ?? null, viaDate(text), text);
    // The other forms chrono writes name the same times, or none, alike.
    const general = text.replace('.000Z', 'Z').replace('.999Z', '.999000+00:00');
    assert.equal(parseTimestamp(general)?.getTime() ?? null, viaDate(text), general);
  }
});

test('records in the writers\' own layout, and near misses of it, parse as JSON.parse reads them', () => {
  const { parseRecord, parseAnyRecord } = require('../dist/metadata.js');
  const { LockParseError: ParseError } = require('../dist/errors.js');
  // The outcome of one parser: the record's fields, null, or the parse error's message.
  const outcome = (parse, text) => {
    try {
      const record = parse(text, '/ws/.ralph/loop.lock');
      return record === null ? null : { pid: record.pid, started: record.started.getTime(), prompt: record.prompt };
    } catch (error) {
      assert.ok(error instanceof ParseError, String(error));
      return `LockParseError: ${error.message}`;
    }
  };
  const agree = (text) => assert.deepEqual(outcome(parseRecord, text), outcome(parseAnyRecord, text), JSON.stringify(text));
  // Times as loop-lock writes them, and as chrono does (0, 3, 6 or 9 fractional digits, Z or an offset).
  const time = fc.oneof(
    fc.integer({ min: -62167219200000, max: 253402300799999 }).map((ms) => new Date(ms).toISOString()),
    fc
      .tuple(fc.integer({ min: 0, max: 253402300799 }), fc.constantFrom('', '.123', '.123456', '.123456789'), fc.constantFrom('Z', '+00:00', '-05:30', 'z'))
      .map(([s, fraction, zone]) => new Date(s * 1000).toISOString().slice(0, 19) + fraction + zone),
  );
  const pid = fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(-1, 2 ** 32, 1.5, 1e21));
  // Whole records, with prompts of any characters (escapes, quotes, control characters, lone surrogates).
  fc.assert(
    fc.property(pid, time, fc.string({ unit: 'binary' }), (p, s, prompt) => agree(recordText(p, s, prompt))),
    { numRuns: 20000 },
  );
  // The same texts cut, extended or with one character changed anywhere: the near misses a fast path could take for records.
  const edits = fc.tuple(pid, time, fc.string({ unit: 'binary', maxLength: 12 }), fc.nat(), fc.constantFrom('cut', 'insert', 'replace'), fc.constantFrom('"', '\\', '\n', '}', '0', ' ', 'u', ',', '\u0000', 'x'));
  fc.assert(
    fc.property(edits, ([p, s, prompt, at, edit, char]) => {
      const text = recordText(p, s, prompt);
      const i = at % (text.length + 1);
      if (edit === 'cut') agree(text.slice(0, i));
      else if (edit === 'insert') agree(text.slice(0, i) + char + text.slice(i));
      else agree(text.slice(0, i) + char + text.slice(i + 1));
    }),
    { numRuns: 50000 },
  );
  // A leading zero, the prompt's quote shared with the end, escaped quotes at the end, a JSON number in another notation.
  for (const text of [
    '{\n  "pid": 0123,\n  "started": "2026-12-07T01:02:03.456Z",\n  "prompt": "p"\n}',
    '{\n  "pid": 1,\n  "started": "2026-12-07T01:02:03.456Z",\n  "prompt": "\n}',
    '{\n  "pid": 1,\n  "started": "2026-12-07T01:02:03.456Z",\n  "prompt": "a\\"\n}',
    '{\n  "pid": 1,\n  "started": "2026-12-07T01:02:03.456Z",\n  "prompt": "a\\\\"\n}',
    '{\n  "pid": 1e3,\n  "started": "2026-12-07T01:02:03.456Z",\n  "prompt": "p"\n}',
    '{\n  "pid": 0,\n  "started": "0000-02-29T00:00:00.000Z",\n  "prompt": ""\n}',
    '{\n  "pid": 4294967295,\n  "started": "9999-12-31T23:59:59.999Z",\n  "prompt": "\\u0000"\n}',
    '{\n  "pid": 7,\n  "started": "2026-12-07T01:02:03.456789012Z",\n  "prompt": "rust"\n}',
    '{\n  "pid": 7,\n  "started": "2026-12-07T01:02:03.456789012Z\\",\n  "prompt": "rust"\n}',
    '{\n  "pid": 7,\n  "started": "2026-13-07T01:02:03Z",\n  "prompt": "rust"\n}',
  ]) {
    agree(text);
  }
});

test('isoTime writes any time a Date holds as Date#toISOString does', () => {
  const { isoTime } = require('../dist/civil-time.js');
  const edges = [0, -1, 1, 951782400000, 4107542400000, 253402300799999, 253402300800000, -62167219200000, -62167219200001, 8.64e15, -8.64e15];
  for (const ms of edges) assert.equal(isoTime(ms), new Date(ms).toISOString(), `ms ${ms}`);
  fc.assert(
    fc.property(fc.oneof(fc.integer({ min: -8.64e15, max: 8.64e15 }), fc.integer({ min: -62167219200000, max: 253402300799999 })), (ms) => {
      assert.equal(isoTime(ms), new Date(ms).toISOString());
    }),
    { numRuns: 50000 },
  );
});
