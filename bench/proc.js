'use strict';

const { spawn } = require('node:child_process');
const readline = require('node:readline');

/**
 * A contender process (runner.js or the C floor) spoken to one line at a
 * time. A reply starting with "error" rejects; an exit rejects whatever is
 * still awaited.
 */
class Proc {
  constructor(label, command, args) {
    this.label = label;
    this.lines = [];
    this.waiters = [];
    this.exited = null;
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      const waiter = this.waiters.shift();
      if (waiter === undefined) this.lines.push(line);
      else this.settle(waiter, line);
    });
    this.child.on('exit', (code, signal) => {
      this.exited = new Error(`${label} exited (${signal ?? code})`);
      for (const waiter of this.waiters.splice(0)) waiter.reject(this.exited);
    });
  }

  settle(waiter, line) {
    if (line.startsWith('error ')) waiter.reject(new Error(`${this.label}: ${line.slice(6)}`));
    else waiter.resolve(line);
  }

  /** The next line this process writes. */
  next() {
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      if (this.lines.length > 0) this.settle(waiter, this.lines.shift());
      else if (this.exited !== null) reject(this.exited);
      else this.waiters.push(waiter);
    });
  }

  /** Sends one command and returns its first reply line. */
  request(line) {
    this.child.stdin.write(`${line}\n`);
    return this.next();
  }

  /** Waits for the greeting: `{ ok: true, info }` or `{ ok: false, reason }`. */
  async ready() {
    const line = await this.next();
    if (line.startsWith('ready ')) return { ok: true, info: JSON.parse(line.slice(6)) };
    return { ok: false, reason: line.replace(/^unavailable /, '') };
  }

  close() {
    this.child.stdin.end();
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) resolve();
      else this.child.once('exit', resolve);
    });
  }
}

/** The payload after a reply's keyword, checked against the keyword. */
function payload(line, keyword) {
  if (!line.startsWith(`${keyword} `) && line !== keyword) {
    throw new Error(`expected "${keyword}", got "${line.slice(0, 200)}"`);
  }
  return line.slice(keyword.length + 1);
}

module.exports = { Proc, payload };
