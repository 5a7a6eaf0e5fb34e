// Helpers of the interop scripts (interop.js, cluster.js): named checks that count their
// failures, bounded waits on a condition, and the jobq_interop helper binary.
'use strict';
const { execFileSync } = require('child_process');

const counts = { failures: 0 };

// Runs check `name`: prints "ok <name>", or "FAIL <name>" and the error (counted).
async function check(name, fn) {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (e) {
    counts.failures++;
    console.log(`FAIL ${name}\n${e.stack}`);
  }
}
// The helper binary `bin` with `args`; its output parsed as JSON.
function runner(bin) {
  return (...args) => JSON.parse(execFileSync(bin, args, { encoding: 'utf8', timeout: 90000 }));
}
// Resolves once cond() holds; rejects after `ms` naming `what` (a string or a function).
function until(cond, ms, what) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() - t0 > ms) {
        return reject(new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`));
      }
      setTimeout(tick, 20);
    };
    tick();
  });
}

// As until, with a condition that may be async (a Redis read).
async function waitFor(cond, ms, what) {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
// A function that opens a Queue by name on `connection`, closed with the other `closers`.
function opener(Queue, connection, closers) {
  return (name) => {
    const q = new Queue(name, { connection });
    closers.push(() => q.close());
    return q;
  };
}

module.exports = { counts, check, runner, until, waitFor, opener };
