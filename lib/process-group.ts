import { readdirSync, readFileSync } from 'node:fs';

/**
 * Sends `signal` to every process of process group `group`. False when the
 * group has no process left (ESRCH). EPERM counts as there: a member that
 * changed its user is out of reach but still running.
 */
export function signalGroup(group: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-group, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    if ((error as NodeJS.ErrnoException).code === 'EPERM') return true;
    throw error;
  }
}

/**
 * Whether a process of group `group` still runs. kill(-group, 0) also
 * reaches zombies: processes that have ended (their descriptors closed,
 * their locks dropped) and wait for a parent to collect them. An orphan's
 * new parent is init, and an init that never collects them (a container's)
 * would keep them forever; on Linux, /proc tells them apart.
 */
export function groupRunning(group: number): boolean {
  try {
    process.kill(-group, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  if (process.platform !== 'linux') return true;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return true;
  }
  return pids.some((pid) => runsIn(pid, group));
}

/** Whether /proc/PID/stat shows a process of `group` that is not a zombie. */
function runsIn(pid: string, group: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return false;
  }
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
  const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(pgrp) === group && state !== 'Z' && state !== 'X';
}
