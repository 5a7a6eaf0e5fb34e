// Rate limits shared by jobq and Node BullMQ on one Redis queue (issue 16), against the
// bullmq package in JOBQ_INTEROP_MODULES (6.7.0).
// usage: node limits.js <path to jobq_interop> <redis unix socket>
// Prints "ok <check>" / "FAIL <check>" lines; exits non-zero on any failure.
//
// Checks: the global rate limit and concurrency set by one side are read (and honoured) by
// the other; jobq and Node workers with the same `limiter` never start more than `max` jobs
// per window together (starts measured from the jobs' processedOn); a jobq handler's
// jobq_job_rate_limit gives its job back to waiting without using an attempt and holds
// back a Node worker with a limiter.
'use strict';
const path = require('path');
const mods = process.env.JOBQ_INTEROP_MODULES || path.join(__dirname, 'node_modules');
const { Queue, Worker } = require(path.join(mods, 'bullmq'));
const bullmqVersion = require(path.join(mods, 'bullmq', 'package.json')).version;
const { execFileSync, spawn } = require('child_process');
const readline = require('readline');
const assert = require('assert/strict');

const [, , bin, sock] = process.argv;
const url = `redis+unix://${sock}`;
const connection = { path: sock, maxRetriesPerRequest: null };
const tag = `${process.pid}-${Date.now()}`;
console.log(`# bullmq ${bullmqVersion}`);
let failures = 0;
const closers = [];

async function check(name, fn) {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}\n${e.stack}`);
  }
}
function jobq(...args) {
  return JSON.parse(execFileSync(bin, args, { encoding: 'utf8', timeout: 60000 }));
}
function until(cond, ms, what) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = async () => {
      if (await cond()) return resolve();
      if (Date.now() - t0 > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}
// `jobq_interop serve`: a jobq worker in its own process, with lines "start <id>",
// "done <id>", "limited <id>" recorded; stop() closes its stdin (graceful close).
function serve(qname, conc, limitMax = 0, limitDuration = 0) {
  const args = ['serve', url, qname, String(conc), '0'];
  if (limitMax > 0) args.push(String(limitMax), String(limitDuration));
  const p = spawn(bin, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const w = { p, started: [], done: [], limited: [], ready: false, exited: false };
  const exited = new Promise((resolve) => p.on('exit', (code) => { w.exited = true; resolve(code); }));
  readline.createInterface({ input: p.stdout }).on('line', (line) => {
    const sp = line.indexOf(' ');
    const [what, arg] = [line.slice(0, sp), line.slice(sp + 1)];
    if (what === 'ready') w.ready = true;
    else if (what === 'start') w.started.push(arg);
    else if (what === 'done') w.done.push(arg);
    else if (what === 'limited') w.limited.push(arg);
  });
  w.whenReady = () => until(() => w.ready || w.exited, 10000, 'jobq worker ready');
  w.stop = async () => { p.stdin.end(); assert.equal(await exited, 0); };
  closers.push(() => { if (!w.exited) p.kill('SIGKILL'); });
  return w;
}
function newQueue(qname) {
  const q = new Queue(qname, { connection });
  closers.push(() => q.close());
  return q;
}

// --- the global limits: one side sets, the other reads ----------------------------------------
async function globalLimits() {
  const qname = `lim-global-${tag}`;
  const queue = newQueue(qname);
  await queue.waitUntilReady();
  await check('16.1 Node reads the global rate limit and concurrency jobq set', async () => {
    jobq('limit', url, qname, '3', '1500', '2');
    assert.deepEqual(await queue.getGlobalRateLimit(), { max: 3, duration: 1500 });
    assert.equal(await queue.getGlobalConcurrency(), 2);
  });
  await check('16.2 jobq reads what Node set and removed', async () => {
    await queue.setGlobalRateLimit(5, 2000);
    await queue.setGlobalConcurrency(4);
    assert.deepEqual(jobq('limits', url, qname), { max: 5, duration: 2000, concurrency: 4 });
    await queue.removeGlobalRateLimit();
    assert.deepEqual(jobq('limits', url, qname), { max: null, duration: null, concurrency: 4 });
    await queue.removeGlobalConcurrency();
    assert.deepEqual(jobq('limits', url, qname), { max: null, duration: null, concurrency: null });
  });
  await check('16.3 jobq removes what Node set', async () => {
    await queue.setGlobalRateLimit(7, 100);
    await queue.setGlobalConcurrency(9);
    jobq('limit', url, qname, '0', '0', '0');
    assert.equal(await queue.getGlobalRateLimit(), null);
    assert.equal(await queue.getGlobalConcurrency(), null);
  });
}

// Groups start times (sorted) into the limiter's fixed windows: a window opens with the first
// start after the previous one closed. `span` is the window length minus a margin for the
// clocks (processedOn is the fetching client's clock, the window's expiry the server's): a
// shorter span can only split a window, never merge two, so a count above `max` is a real
// breach.
function windows(starts, span) {
  const out = [];
  for (const t of starts) {
    const last = out[out.length - 1];
    if (last && t < last.from + span) last.n++;
    else out.push({ from: t, n: 1 });
  }
  return out;
}

// --- jobq and Node workers with the same limiter, on one queue ------------------------------
// One side starts alone and fills the first window (so it surely takes part), the other joins;
// then every fixed window of the run holds at most `max` starts, whoever made them. Run once
// with each side first, so that each is seen sharing windows it did not open.
async function sharedLimiter(nodeFirst) {
  const qname = `lim-shared-${nodeFirst ? 'node' : 'jobq'}-${tag}`;
  const queue = newQueue(qname);
  const max = 2;
  const duration = 600;
  const n = 12;
  const first = nodeFirst ? 'Node' : 'jobq';
  await check(`16.4 ${first} first, then both: jobq and Node workers with the same limiter keep ${max} starts per window together`, async () => {
    await queue.addBulk(Array.from({ length: n }, (_, i) => ({ name: 'mixed', data: { i } })));
    const nodeRuns = [];
    const mk = () => {
      const w = new Worker(qname, async (job) => { nodeRuns.push(job.id); return { by: 'node' }; },
        { connection, concurrency: 4, limiter: { max, duration } });
      closers.push(() => w.close());
      return w;
    };
    let j;
    let nodeWorkers;
    if (nodeFirst) {
      nodeWorkers = [mk(), mk()];
      await until(() => nodeRuns.length >= max, 10000, 'the Node workers to fill a window');
      j = serve(qname, 4, max, duration);
      await j.whenReady();
    } else {
      j = serve(qname, 4, max, duration);
      await j.whenReady();
      await until(() => j.started.length >= max, 10000, 'the jobq worker to fill a window');
      nodeWorkers = [mk(), mk()];
    }
    await until(async () => (await queue.getJobCounts('completed')).completed === n, 60000,
      `${n} completed jobs`);
    await Promise.all([...nodeWorkers.map((w) => w.close()), j.stop()]);
    const done = await queue.getJobs(['completed'], 0, -1);
    assert.equal(done.length, n);
    const starts = done.map((job) => job.processedOn).sort((a, b) => a - b);
    const ws = windows(starts, duration - 100);
    const over = ws.filter((w) => w.n > max);
    assert.deepEqual(over, [], `more than ${max} starts in a window: ${JSON.stringify(ws)}`);
    assert.ok(ws.length >= n / max, `${ws.length} windows for ${n} jobs`);
    assert.equal(j.started.length + nodeRuns.length, n);
    console.log(`# ${first} first: jobq started ${j.started.length}, Node ${nodeRuns.length}, in ${ws.length} windows`);
  });
}

// --- a jobq handler rate-limits the queue -----------------------------------------------------
async function handlerRateLimit() {
  const qname = `lim-handler-${tag}`;
  const queue = newQueue(qname);
  await check('16.5 a jobq handler rate-limits the queue: its job waits again, no attempt used', async () => {
    const job = await queue.add('rate-limit', {}, { attempts: 1 });
    const j = serve(qname, 1, 1, 10000);
    await j.whenReady();
    await until(() => j.limited.length === 1, 10000, 'the handler to rate-limit');
    // back to waiting (not failed), the attempt not counted, the limiter key set
    await until(async () => (await queue.getJobState(job.id)) !== 'active', 5000, 'the job back');
    const back = await queue.getJob(job.id);
    assert.equal(await back.getState(), 'waiting');
    assert.equal(back.attemptsMade, 0);
    assert.equal(back.attemptsStarted, 1);
    assert.ok((await queue.getRateLimitTtl(1)) > 0, 'no rate-limit TTL on the queue');
    // after the 400 ms, the job runs again and completes with its one attempt
    await until(async () => (await queue.getJobState(job.id)) === 'completed', 10000, 'completion');
    const fin = await queue.getJob(job.id);
    assert.equal(fin.attemptsMade, 1);
    assert.equal(fin.attemptsStarted, 2);
    await j.stop();
  });
}

(async () => {
  try {
    await globalLimits();
    await sharedLimiter(true);
    await sharedLimiter(false);
    await handlerRateLimit();
  } finally {
    for (const c of closers.reverse()) {
      try {
        await c();
      } catch (e) {
        // closing is best effort
      }
    }
  }
  console.log(failures ? `${failures} failed` : 'all passed');
  process.exit(failures ? 1 : 0);
})();
