import { daysFromCivil } from './civil-time.js';
import { LockParseError } from './errors.js';

/** What the holder writes into the lock file, readable by anyone. */
export interface LockMetadata {
  /** Process id of the holder (on the holder's host). */
  pid: number;
  /** When the holder took the lock. */
  started: Date;
  /** The task the holder is running. */
  prompt: string;
}

/**
 * Largest metadata record loop-lock writes or reads. Reads stop one byte
 * past it, so a huge or endless file costs at most this much memory.
 */
export const MAX_METADATA_BYTES = 1024 * 1024;

// The record's bytes around the pid, the time and the prompt's JSON, as
// native/record.cc lays them out: `{\n  "pid": ` `,\n  "started": "`
// `",\n  "prompt": ` and `\n}`.
const RECORD_FRAME_BYTES = 11 + 16 + 15 + 2;

/**
 * The size of the record that `pid` writes with `promptJson` when its clock
 * reads `now` (ms): the time as Date#toISOString writes it, 24 bytes for
 * years 0 to 9999, 27 with a sign and six digits beyond.
 */
export function recordBytes(pid: number, promptJson: string, now: number = Date.now()): number {
  return RECORD_FRAME_BYTES + String(pid).length + new Date(now).toISOString().length + Buffer.byteLength(promptJson);
}

// A prompt's JSON this much smaller than the bound fits whatever the pid and
// the time: the exact count is needed only near it.
const ROOM_FOR_PID_AND_TIME = RECORD_FRAME_BYTES + 10 + 27;

/**
 * Validates a prompt and returns it JSON-encoded, ready for the record
 * (native/record.h lays it out, byte for byte as serde_json's
 * `to_string_pretty` writes the reference's `LockMetadata`).
 * Done once, before locking, so a bad prompt never touches the file.
 * The bound is the record's own size, the one readers accept: a record of
 * exactly MAX_METADATA_BYTES is written, one byte more is refused.
 */
export function encodePrompt(prompt: unknown, lockPath: string, pid: number = process.pid): string {
  if (typeof prompt !== 'string') {
    throw new TypeError(`The "prompt" argument must be a string, received ${describe(prompt)}`);
  }
  if (!prompt.isWellFormed()) {
    // JSON.stringify would write a lone surrogate as "\ud800", which the Rust
    // reference (serde_json) refuses to read.
    throw new TypeError('The "prompt" argument must be well-formed Unicode: it contains a lone surrogate');
  }
  const json = JSON.stringify(prompt);
  if (json.length * 3 > MAX_METADATA_BYTES - ROOM_FOR_PID_AND_TIME) checkRecordSize(pid, json, lockPath);
  return json;
}

/** Refuses a prompt whose record would be larger than readers read. */
export function checkRecordSize(pid: number, promptJson: string, lockPath: string): void {
  const size = recordBytes(pid, promptJson);
  if (size > MAX_METADATA_BYTES) {
    throw new RangeError(
      `The "prompt" argument is too large: its record in '${lockPath}' would be ${size} bytes, ` +
        `over the ${MAX_METADATA_BYTES} that readers accept`,
    );
  }
}

// RFC 3339 date-time; chrono writes 0, 3, 6 or 9 fractional digits and "Z".
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** Parses an RFC 3339 timestamp into a Date (milliseconds kept), or null. */
export function parseTimestamp(text: string): Date | null {
  const own = parseOwnForm(text);
  return own === undefined ? parseGeneral(text) : own;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Whether the fields name a real UTC time (proleptic Gregorian; no leap second). */
function isRealTime(year: number, month: number, day: number, hour: number, minute: number, second: number): boolean {
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return false;
  const leapDay = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 1 : 0;
  return day <= (DAYS_IN_MONTH[month - 1] as number) + leapDay;
}

/** The decimal number in text[from, from + count), or -1 if a character is not a digit. */
function digits(text: string, from: number, count: number): number {
  let value = 0;
  for (let i = from; i < from + count; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/**
 * loop-lock's own form, Date#toISOString's (YYYY-MM-DDTHH:MM:SS.mmmZ), read
 * field by field: a fifth of the cost of having Date parse it and checking
 * the round trip, on the path every contended tryAcquire and status takes.
 * Undefined when the text has another form; null when it has this one but
 * names no real time.
 */
function parseOwnForm(text: string): Date | null | undefined {
  if (
    text.length !== 24 ||
    text[4] !== '-' ||
    text[7] !== '-' ||
    text[10] !== 'T' ||
    text[13] !== ':' ||
    text[16] !== ':' ||
    text[19] !== '.' ||
    text[23] !== 'Z'
  ) {
    return undefined;
  }
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  const hour = digits(text, 11, 2);
  const minute = digits(text, 14, 2);
  const second = digits(text, 17, 2);
  const millis = digits(text, 20, 3);
  if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0 || millis < 0) return undefined;
  if (!isRealTime(year, month, day, hour, minute, second)) return null;
  return new Date(daysFromCivil(year, month, day) * 86_400_000 + ((hour * 60 + minute) * 60 + second) * 1000 + millis);
}

function parseGeneral(text: string): Date | null {
  const m = RFC3339.exec(text);
  if (m === null) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const millis = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  if (!isRealTime(year, month, day, hour, minute, second)) return null;
  let offsetMinutes = 0;
  if (m[8] === undefined) {
    const offsetHours = Number(m[10]);
    const offsetRest = Number(m[11]);
    if (offsetHours > 23 || offsetRest > 59) return null;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (offsetHours * 60 + offsetRest);
  }
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day);
  utc.setUTCHours(hour, minute - offsetMinutes, second, millis);
  return utc;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `type ${typeof value}`;
}

function toMetadata(value: unknown, path: string): LockMetadata {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new LockParseError(path, `expected a JSON object, found ${describe(value)}`);
  }
  const { pid, started, prompt } = value as Record<string, unknown>;
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 0 || pid > 0xffffffff) {
    throw new LockParseError(path, `"pid" must be an integer from 0 to 4294967295, found ${describe(pid)}`);
  }
  if (typeof started !== 'string') {
    throw new LockParseError(path, `"started" must be an RFC 3339 string, found ${describe(started)}`);
  }
  const date = parseTimestamp(started);
  if (date === null) {
    throw new LockParseError(path, `"started" is not an RFC 3339 timestamp: ${JSON.stringify(started)}`);
  }
  if (typeof prompt !== 'string') {
    throw new LockParseError(path, `"prompt" must be a string, found ${describe(prompt)}`);
  }
  return { pid, started: date, prompt };
}

/**
 * Parses the lock file's text. An empty file (created, never written) is
 * `null`; anything that is not a complete record is a `LockParseError`.
 *
 * A holder rewrites a longer old record in place and then truncates it, so
 * for a moment the file is the new record followed by the old one's tail.
 * A top-level pretty-printed object ends at the first "\n}" (a newline
 * inside a JSON string is escaped), so that prefix is the new record whole.
 */
export function parseRecord(text: string, path: string): LockMetadata | null {
  return parseOwnLayout(text) ?? parseAnyRecord(text, path);
}

/** `parseRecord` by `JSON.parse`, for any layout: what `parseOwnLayout` must agree with. */
export function parseAnyRecord(text: string, path: string): LockMetadata | null {
  if (text.trim() === '') return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const end = text.indexOf('\n}');
    if (end < 0 || end + 2 === text.length) {
      throw new LockParseError(path, 'not valid JSON', error);
    }
    try {
      value = JSON.parse(text.slice(0, end + 2));
    } catch {
      throw new LockParseError(path, 'not valid JSON', error);
    }
  }
  return toMetadata(value, path);
}

// The record as native/record.cc and serde_json's to_string_pretty lay it
// out, around the pid's digits, the time and the prompt's characters.
const PID_FIELD = '{\n  "pid": ';
const STARTED_FIELD = ',\n  "started": "';
const PROMPT_FIELD = '",\n  "prompt": "';
const RECORD_END = '"\n}';
// What a JSON string holds only escaped.
const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;

/**
 * A record in its writers' own layout, read field by field: the one that
 * every status() and contended tryAcquire() meets, at half the cost of
 * JSON.parse and checking what it built. Undefined for any other text
 * (another layout, a pid JSON would not read, a time that is not RFC 3339,
 * a prompt with escapes that do not decode), which `parseAnyRecord` then
 * reads or refuses: for every text this accepts, it returns what that does.
 */
function parseOwnLayout(text: string): LockMetadata | undefined {
  if (!text.startsWith(PID_FIELD) || !text.endsWith(RECORD_END)) return undefined;
  let at = PID_FIELD.length;
  let pid = 0;
  for (; at < text.length; at++) {
    const digit = text.charCodeAt(at) - 48;
    if (digit < 0 || digit > 9) break;
    pid = pid * 10 + digit;
  }
  const pidDigits = at - PID_FIELD.length;
  // JSON writes no leading zero; a pid has at most 10 digits.
  if (pidDigits === 0 || pidDigits > 10 || (pidDigits > 1 && text[PID_FIELD.length] === '0')) return undefined;
  if (pid > 0xffffffff || !text.startsWith(STARTED_FIELD, at)) return undefined;
  at += STARTED_FIELD.length;
  // Any RFC 3339 form (the Rust reference writes nine fractional digits),
  // which holds no quote or backslash.
  const startedEnd = text.indexOf('"', at);
  const started = startedEnd < 0 ? null : parseTimestamp(text.slice(at, startedEnd));
  if (started === null) return undefined;
  at = startedEnd;
  const from = at + PROMPT_FIELD.length;
  const end = text.length - RECORD_END.length;
  if (from > end || !text.startsWith(PROMPT_FIELD, at)) return undefined;
  const body = text.slice(from, end);
  // Without a quote, backslash or control character, the JSON string's
  // characters are its value; escapes are decoded by JSON.parse.
  if (!NEEDS_ESCAPE.test(body)) return { pid, started, prompt: body };
  let prompt: unknown;
  try {
    prompt = JSON.parse(`"${body}"`);
  } catch {
    return undefined;
  }
  return typeof prompt === 'string' ? { pid, started, prompt } : undefined;
}
