import { constants } from 'node:os';

// Every signal whose default action ends a process and that a Node process
// can catch. `loop-lock run` holds the lock for its command, so a signal
// that ended it would leave the command running without the lock; it passes
// them on instead, and the command's exit (by that signal or otherwise)
// ends it. Left out:
// - SIGKILL and SIGSTOP: they cannot be caught.
// - SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS: raised by a fault of
//   the process itself, which a handler that returns would run into again.
//   (SIGABRT is in: abort() ends the process even after a handler returns.)
// - SIGPROF: the profiler's clock, when the wrapper is profiled.
// - SIGPIPE: Node ignores it.
// - SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT: job control stops and resumes the
//   whole process group, command included; catching them would keep the
//   wrapper from stopping, and a shell from regaining the terminal.
// - SIGCHLD, SIGURG, SIGWINCH: ignored by default, they end nothing.
const TERMINATING = [
  'SIGHUP',
  'SIGINT',
  'SIGQUIT',
  'SIGABRT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGALRM',
  'SIGTERM',
  'SIGSTKFLT',
  'SIGXCPU',
  'SIGXFSZ',
  'SIGVTALRM',
  'SIGIO',
  'SIGPWR',
  'SIGLOST',
] as const;

/** The signals `loop-lock run` forwards to its command: those of TERMINATING this platform has. */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = TERMINATING.filter(
  (name) => (constants.signals as Partial<Record<string, number>>)[name] !== undefined,
);
