/** Longest prompt `run` derives from the command line, in code points. */
export const DEFAULT_PROMPT_LENGTH = 200;

// Words a POSIX shell reads back unchanged without quotes.
const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quotes a word so that pasting it into a POSIX shell gives it back. */
export function shellQuote(word: string): string {
  if (SAFE_WORD.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * Quotes a word as Windows command lines do (CommandLineToArgvW reads it
 * back): in double quotes when it is empty or holds blanks or quotes, with
 * a quote escaped by a backslash and the backslashes before it doubled.
 */
export function windowsQuote(word: string): string {
  if (word !== '' && !/[\s"]/.test(word)) return word;
  return `"${word.replace(/(\\*)"/g, '$1$1\\"').replace(/(\\+)$/, '$1$1')}"`;
}

/**
 * Cuts text to `max` code points, the last being an ellipsis. Counting code
 * points, not UTF-16 units, keeps a surrogate pair whole: a lone half would
 * make the prompt unwritable (the Rust reader refuses it).
 */
export function truncate(text: string, max: number): string {
  const points = Array.from(text);
  return points.length <= max ? text : `${points.slice(0, max - 1).join('')}…`;
}

/** The prompt `run` records when none is given: the command line, as a shell would show it. */
export function defaultPrompt(command: string, args: readonly string[]): string {
  const quote = process.platform === 'win32' ? windowsQuote : shellQuote;
  return truncate([command, ...args].map(quote).join(' '), DEFAULT_PROMPT_LENGTH);
}

/** A duration as its two largest units: "45s", "3m 12s", "2h 5m", "4d 3h". */
function formatDuration(ms: number): string {
  const total = Math.floor(Math.abs(ms) / 1000);
  const units: Array<[number, string]> = [
    [Math.floor(total / 86400), 'd'],
    [Math.floor(total / 3600) % 24, 'h'],
    [Math.floor(total / 60) % 60, 'm'],
    [total % 60, 's'],
  ];
  const first = units.findIndex(([value]) => value > 0);
  if (first < 0) return '0s';
  return units
    .slice(first, first + 2)
    .filter(([value]) => value > 0)
    .map(([value, unit]) => `${value}${unit}`)
    .join(' ');
}

/** How long ago `date` was, for people: "3m 12s ago" (or "5s from now" when clocks disagree). */
export function formatAgo(date: Date, now: number = Date.now()): string {
  const elapsed = now - date.getTime();
  return elapsed >= 0 ? `${formatDuration(elapsed)} ago` : `${formatDuration(elapsed)} from now`;
}

// One line each, long ones cut: the full prompt can be a whole prompt file.
const SHOWN_PROMPT_LENGTH = 200;

/** A holder as the CLI shows it: its metadata and whether its pid runs on this host. */
export interface ShownHolder {
  pid: number;
  started: Date;
  prompt: string;
  alive: boolean;
}

/** The holder's fields as indented "name: value" lines. */
export function holderLines(holder: ShownHolder | null, now: number = Date.now()): string[] {
  if (holder === null) return ['  holder: unknown (the record in the lock file is not its holder\'s)'];
  const prompt = truncate(holder.prompt.replace(/\s+/g, ' ').trim(), SHOWN_PROMPT_LENGTH);
  return [
    `  pid:    ${holder.pid} (${holder.alive ? 'alive' : 'not running on this host'})`,
    `  since:  ${holder.started.toISOString()} (${formatAgo(holder.started, now)})`,
    `  prompt: ${prompt}`,
  ];
}

// Unicode's bidirectional controls (ALM, LRM, RLM, the embeddings,
// overrides and isolates): a terminal obeys them by reordering the rest of
// the line, so a prompt could make what follows it read otherwise.
const BIDI = '\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069';

// What a terminal obeys instead of showing: C0 controls (ESC starts the
// sequences that set the window title or colours, or move the cursor), DEL,
// C1 controls (U+009B alone is a CSI) and the bidirectional ones. Line feeds
// are kept: they are the output's own line breaks, and holderLines folds the
// prompt's away.
const CONTROLS = new RegExp(`[\\u0000-\\u0009\\u000b-\\u001f\\u007f-\\u009f${BIDI}]`, 'g');

/** What JSON.stringify leaves raw of CONTROLS: all but C0. */
const JSON_CONTROLS = new RegExp(`[\\u007f-\\u009f${BIDI}]`, 'g');

const hex = (c: string, digits: number): string => c.charCodeAt(0).toString(16).padStart(digits, '0');

/**
 * Text for a terminal: each control character but the line feed shown as
 * `\xHH` (`\uHHHH` beyond U+00FF), so a prompt written into the lock file
 * by someone else cannot drive the terminal of whoever looks at it.
 */
export function terminalText(text: string): string {
  return text.replace(CONTROLS, (c) => (c.charCodeAt(0) <= 0xff ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`));
}

/**
 * `value` as JSON (indented by `indent` spaces; 0: one line), with DEL, C1
 * and bidirectional controls escaped as well: JSON.stringify escapes only
 * C0 ones, leaving the rest to reach a terminal raw.
 */
export function terminalJson(value: unknown, indent = 2): string {
  return JSON.stringify(value, null, indent).replace(JSON_CONTROLS, (c) => `\\u${hex(c, 4)}`);
}

/**
 * One line for a state seen by `status --watch`: when it was seen, then
 * "free", or "held" with the holder's pid, start and prompt.
 */
export function watchLine(locked: boolean, holder: ShownHolder | null, now: number = Date.now()): string {
  const seen = new Date(now).toISOString();
  if (!locked) return `${seen} free`;
  if (holder === null) return `${seen} held, holder unknown (its metadata is not written yet, or not readable)`;
  const prompt = truncate(holder.prompt.replace(/\s+/g, ' ').trim(), SHOWN_PROMPT_LENGTH);
  const alive = holder.alive ? 'alive' : 'not running on this host';
  return `${seen} held by pid ${holder.pid} (${alive}) since ${holder.started.toISOString()}: ${prompt}`;
}
