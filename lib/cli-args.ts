import { parseArgs } from 'node:util';

/** `loop-lock status [DIR] [--json] [--watch] [--lock-file PATH]` */
export interface StatusCommand {
  kind: 'status';
  /** DIR, or `undefined` when omitted: then the workspace ralph would find (`LoopLock.findWorkspace()`). */
  dir: string | undefined;
  json: boolean;
  /** Print one line per change until interrupted, instead of the state once. */
  watch: boolean;
  lockFile: string | undefined;
}

/** `loop-lock run [DIR] [options] -- COMMAND [ARGS...]` */
export interface RunCommand {
  kind: 'run';
  /** DIR, or `undefined` when omitted (see StatusCommand). */
  dir: string | undefined;
  lockFile: string | undefined;
  prompt: string | undefined;
  /** True with `--wait`, and with `--timeout` (which implies it). */
  wait: boolean;
  timeoutMs: number | undefined;
  conflictExitCode: number | undefined;
  command: string;
  args: string[];
}

/** What the command line asks for. */
export type Invocation = { kind: 'help' } | { kind: 'version' } | StatusCommand | RunCommand;

/** A command line loop-lock cannot make sense of; the message says why. */
export class UsageError extends Error {}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

const help = { type: 'boolean', short: 'h' } as const;
const lockFile = { type: 'string' } as const;

const statusOptions: OptionSpec = { help, json: { type: 'boolean' }, watch: { type: 'boolean' }, 'lock-file': lockFile };

const runOptions: OptionSpec = {
  help,
  'lock-file': lockFile,
  prompt: { type: 'string' },
  wait: { type: 'boolean' },
  timeout: { type: 'string' },
  'conflict-exit-code': { type: 'string' },
};

// The longest --timeout: about 24.8 days, a Node timer's longest delay, as
// the option has always accepted.
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

const RUN_SYNOPSIS = "'loop-lock run [DIR] -- COMMAND [ARGS...]'";

interface Parsed {
  values: Record<string, string | boolean>;
  /** Positionals before `--`. */
  before: string[];
  /** Positionals after `--`, or `null` when there is no `--`. */
  after: string[] | null;
}

/**
 * Parses non-strictly so every mistake gets a message written for this
 * command, then checks what strict mode would: known names, values where
 * needed and nowhere else, and no option swallowed as another's value.
 */
function parseCommandArgs(command: string, args: readonly string[], options: OptionSpec): Parsed {
  const { tokens } = parseArgs({ args: [...args], options, strict: false, allowPositionals: true, tokens: true });
  const parsed: Parsed = { values: {}, before: [], after: null };
  for (const token of tokens) {
    if (token.kind === 'option-terminator') {
      parsed.after = [];
    } else if (token.kind === 'positional') {
      (parsed.after ?? parsed.before).push(token.value);
    } else {
      const spec = options[token.name];
      if (spec === undefined) throw new UsageError(`unknown option '${token.rawName}' for '${command}'`);
      if (spec.type === 'boolean') {
        if (token.value !== undefined) throw new UsageError(`option '${token.rawName}' takes no value`);
        parsed.values[token.name] = true;
      } else {
        if (token.value === undefined || (token.inlineValue === false && token.value.startsWith('-'))) {
          throw new UsageError(
            `option '${token.rawName}' needs a value (write '${token.rawName}=VALUE' for a value that starts with '-')`,
          );
        }
        parsed.values[token.name] = token.value;
      }
    }
  }
  return parsed;
}

function stringValue(parsed: Parsed, name: string): string | undefined {
  const value = parsed.values[name];
  return typeof value === 'string' ? value : undefined;
}

function directoryOf(positionals: readonly string[]): string | undefined {
  const dir = positionals[0];
  if (dir === '') throw new UsageError('DIR must not be empty');
  return dir;
}

function lockFileOf(parsed: Parsed): string | undefined {
  const value = stringValue(parsed, 'lock-file');
  if (value === '') throw new UsageError("option '--lock-file' must not be empty");
  return value;
}

function parseTimeout(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = /^(?:\d+(?:\.\d*)?|\.\d+)$/.test(text) ? Math.ceil(Number(text) * 1000) : Number.NaN;
  if (!(ms <= MAX_TIMEOUT_MS)) {
    throw new UsageError(
      `option '--timeout' takes a number of seconds from 0 to ${MAX_TIMEOUT_MS / 1000}, got '${text}'`,
    );
  }
  return ms;
}

function parseExitCode(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const code = /^\d{1,3}$/.test(text) ? Number(text) : Number.NaN;
  if (!(code <= 255)) {
    throw new UsageError(`option '--conflict-exit-code' takes an exit code from 0 to 255, got '${text}'`);
  }
  return code;
}

function parseStatus(args: readonly string[]): Invocation {
  const parsed = parseCommandArgs('status', args, statusOptions);
  if (parsed.values['help'] === true) return { kind: 'help' };
  const positionals = [...parsed.before, ...(parsed.after ?? [])];
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}' for 'status'`);
  return {
    kind: 'status',
    dir: directoryOf(positionals),
    json: parsed.values['json'] === true,
    watch: parsed.values['watch'] === true,
    lockFile: lockFileOf(parsed),
  };
}

function parseRun(args: readonly string[]): Invocation {
  const parsed = parseCommandArgs('run', args, runOptions);
  if (parsed.values['help'] === true) return { kind: 'help' };
  if (parsed.before.length > 1) {
    throw new UsageError(
      `unexpected argument '${parsed.before[1]}' for 'run': put the command after '--', as in ${RUN_SYNOPSIS}`,
    );
  }
  if (parsed.after === null) {
    throw new UsageError(`missing command: put it after '--', as in ${RUN_SYNOPSIS}`);
  }
  const [command, ...commandArgs] = parsed.after;
  if (command === undefined) throw new UsageError("missing command after '--'");
  if (command === '') throw new UsageError('COMMAND must not be empty');
  const timeoutMs = parseTimeout(stringValue(parsed, 'timeout'));
  return {
    kind: 'run',
    dir: directoryOf(parsed.before),
    lockFile: lockFileOf(parsed),
    prompt: stringValue(parsed, 'prompt'),
    wait: parsed.values['wait'] === true || timeoutMs !== undefined,
    timeoutMs,
    conflictExitCode: parseExitCode(stringValue(parsed, 'conflict-exit-code')),
    command,
    args: commandArgs,
  };
}

/**
 * Reads a command line (without the `node` and script arguments).
 *
 * @throws UsageError for anything that is not a valid invocation.
 */
export function parseCommandLine(argv: readonly string[]): Invocation {
  const [first, ...rest] = argv;
  switch (first) {
    case undefined:
      throw new UsageError('missing command (status or run)');
    case '-h':
    case '--help':
      return { kind: 'help' };
    case '--version':
      return { kind: 'version' };
    case 'status':
      return parseStatus(rest);
    case 'run':
      return parseRun(rest);
    default:
      throw new UsageError(
        first.startsWith('-') ? `unknown option '${first}'` : `unknown command '${first}' (expected status or run)`,
      );
  }
}
