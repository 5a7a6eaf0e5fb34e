// BullMQ 6.7.0 <-> jobq interop on one Redis server (bullmq-protocol.md §8).
// usage: node interop.js <path to jobq_interop> <redis unix socket>
// Prints "ok <check>" / "FAIL <check>" lines; exits non-zero on any failure.
'use strict';
const { Queue, Worker, QueueEvents } = require('bullmq');
const { execFileSync } = require('child_process');
const assert = require('assert/strict');

const [, , bin, sock] = process.argv;
const url = `redis+unix://${sock}`;
const connection = { path: sock, maxRetriesPerRequest: null };
const tag = `${process.pid}-${Date.now()}`;
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
  return JSON.parse(execFileSync(bin, args, { encoding: 'utf8', timeout: 90000 }));
}
function until(cond, ms, what) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() - t0 > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}
// A QueueEvents that records everything and must never report an error.
async function recorder(qname) {
  const qe = new QueueEvents(qname, { connection, lastEventId: '0' });
  const rec = { events: [], errors: [], qe };
  const names = ['added', 'waiting', 'delayed', 'active', 'progress', 'completed', 'failed',
    'retries-exhausted', 'stalled', 'drained', 'removed', 'duplicated'];
  for (const n of names) qe.on(n, (args, id) => rec.events.push({ event: n, ...(args || {}), id }));
  qe.on('error', (e) => rec.errors.push(e));
  await qe.waitUntilReady();
  closers.push(() => qe.close());
  return rec;
}
const of = (rec, event, jobId) => rec.events.filter((e) => e.event === event && (jobId === undefined || e.jobId === jobId));

// --- 8.1 jobq producer -> Node worker ---------------------------------------------------------
async function jobqToNode() {
  const qname = `ia-${tag}`;
  const rec = await recorder(qname);
  const queue = new Queue(qname, { connection });
  closers.push(() => queue.close());
  const ids = jobq('add', url, qname);

  await check('8.1.1 Node decodes jobq-written jobs', async () => {
    const std = await queue.getJob(ids.std);
    assert.equal(std.name, 'std');
    assert.deepEqual(std.data, { a: 1, s: 'ünicode ✓', n: [1, 2.5] });
    assert.equal(std.opts.attempts, 0);
    assert.equal(typeof std.timestamp, 'number');
    assert.equal((await queue.getJob(ids.string)).data, 'just a string');
    const custom = await queue.getJob('my-id');
    assert.equal(custom.id, 'my-id');
    assert.equal(custom.opts.jobId, 'my-id');
    const rf = await queue.getJob(ids['retry-fixed']);
    assert.deepEqual(rf.opts.backoff, { type: 'fixed', delay: 200 });
    assert.equal(rf.opts.attempts, 3);
    assert.equal((await queue.getJob(ids.roc)).opts.removeOnComplete, true);
    assert.equal((await queue.getJob(ids.prio5)).priority, 5);
    assert.equal((await queue.getJob(ids.delayed)).delay, 1500);
    const all = await queue.getJobs(['waiting', 'prioritized', 'delayed']);
    assert.equal(all.length, 12);
  });
  await check('8.1.2 auto ids increase, Pid counts every add', async () => {
    const n = Object.values(ids).filter((v) => /^\d+$/.test(v)).map(Number);
    assert.deepEqual(n, [...n].sort((a, b) => a - b));
    const [nodeJob] = [await queue.add('node-after', {})];
    assert.equal(Number(nodeJob.id), 13);
    await nodeJob.remove();
  });
  await check('8.2.5 getJobCounts / getState on jobq jobs', async () => {
    const c = await queue.getJobCounts();
    assert.equal(c.waiting, 9);
    assert.equal(c.prioritized, 2);
    assert.equal(c.delayed, 1);
    assert.equal(await queue.getJobState(ids.std), 'waiting');
    assert.equal(await queue.getJobState(ids.prio2), 'prioritized');
    assert.equal(await queue.getJobState(ids.delayed), 'delayed');
  });

  const runs = [];
  let done = 0;
  const worker = new Worker(qname, async (job) => {
    runs.push({ name: job.name, id: job.id, at: Date.now(), made: job.attemptsMade });
    if (job.name.startsWith('retry-') && job.attemptsMade < 2) throw new Error(`retry ${job.attemptsMade}`);
    if (job.name === 'rof') throw new Error('rof fails');
    return { ok: job.name };
  }, { connection, concurrency: 1 });
  closers.push(() => worker.close());
  worker.on('completed', () => done++);
  worker.on('failed', (job) => { if (job.attemptsMade >= (job.opts.attempts || 1)) done++; });
  await check('8.1 Node worker processes every jobq job', () => until(() => done >= 12, 20000, 'jobs'));

  await check('8.1.4 order: lifo first, FIFO, then priorities ascending', async () => {
    const first = [];
    for (const r of runs) if (!first.includes(r.name) && r.name !== 'delayed') first.push(r.name);
    assert.deepEqual(first.slice(0, 11), ['lifo', 'std', 'string', 'custom', 'retry-fixed', 'retry-exp',
      'roc', 'rof', 'keep1', 'prio2', 'prio5']);
  });
  await check('8.1.5 delayed job not started before timestamp+delay', async () => {
    const r = runs.find((x) => x.name === 'delayed');
    const job = await queue.getJob(ids.delayed);
    assert.ok(r.at >= job.timestamp + 1500, `${r.at - job.timestamp} ms`);
    assert.ok(r.at <= job.timestamp + 1500 + 1000, `late: ${r.at - job.timestamp} ms`);
    const ev = of(rec, 'delayed', ids.delayed)[0];
    assert.equal(Number(ev.delay), job.timestamp + 1500);
  });
  await check('8.1.6 retries with fixed and exponential backoff', async () => {
    const fx = runs.filter((r) => r.name === 'retry-fixed').map((r) => r.at);
    const ex = runs.filter((r) => r.name === 'retry-exp').map((r) => r.at);
    assert.equal(fx.length, 3);
    assert.equal(ex.length, 3);
    assert.ok(fx[1] - fx[0] >= 195 && fx[2] - fx[1] >= 195, `fixed ${fx}`);
    assert.ok(ex[1] - ex[0] >= 95 && ex[2] - ex[1] >= 195, `exponential ${ex}`);
  });
  await check('8.1.7 removeOnComplete/removeOnFail written by jobq applied by Node', async () => {
    assert.equal(await queue.getJob(ids.roc), undefined);
    assert.equal(await queue.getJob(ids.rof), undefined);
    assert.equal(await queue.getJob(ids.std), undefined); // trimmed by keep1's count 1
    assert.ok(await queue.getJob(ids.keep1));
  });
  await check('QueueEvents saw the jobq adds and the Node completions', async () => {
    assert.equal(of(rec, 'added').length, 13);
    await until(() => of(rec, 'completed').length >= 11, 3000, 'completed events');
  });
  await worker.close();
  return rec;
}

// --- 8.2 Node producer -> jobq worker ---------------------------------------------------------
async function nodeToJobq() {
  const qname = `ib-${tag}`;
  const rec = await recorder(qname);
  const queue = new Queue(qname, { connection });
  closers.push(() => queue.close());
  const qe = new QueueEvents(qname, { connection });
  closers.push(() => qe.close());
  await qe.waitUntilReady();
  const ts = Date.now() - 10000;
  const std = await queue.add('std', { x: 1, u: 'ünï' });
  await queue.add('custom', { c: 1 }, { jobId: 'cust-1' });
  const dup = await queue.add('custom', { c: 2 }, { jobId: 'cust-1' });
  await queue.add('prio', {}, { priority: 3 });
  await queue.add('lifo', {}, { lifo: true });
  const delayed = await queue.add('delayed', {}, { delay: 800 });
  const flaky = await queue.add('flaky', {}, { attempts: 3, backoff: { type: 'fixed', delay: 150 } });
  const fa = await queue.add('fail-always', { f: 1 }, { attempts: 2, backoff: 100 });
  await queue.add('fail-always', {}, { jobId: 'rof-exp', attempts: 3, backoff: { type: 'exponential', delay: 50 }, removeOnFail: true });
  const prog = await queue.add('progress', {}, { keepLogs: 1 });
  const roc = await queue.add('roc', {}, { removeOnComplete: true });
  const tsj = await queue.add('ts', {}, { timestamp: ts });
  const stdDone = std.waitUntilFinished(qe, 30000);
  const faDone = fa.waitUntilFinished(qe, 30000).then(() => 'resolved', (e) => e.message);

  const stats = jobq('work', url, qname, '700');
  await check('8.2 jobq worker ran the Node jobs', () => {
    assert.equal(stats.completed, 9);
  });
  await check('8.1.3 duplicate custom id from Node returns the same id', () => {
    assert.equal(dup.id, 'cust-1');
  });
  await check('8.2.2 completed: waitUntilFinished, returnvalue, hash fields', async () => {
    assert.deepEqual(await stdDone, { name: 'std', data: { x: 1, u: 'ünï' } });
    const j = await queue.getJob(std.id);
    assert.deepEqual(j.returnvalue, { name: 'std', data: { x: 1, u: 'ünï' } });
    assert.equal(j.attemptsMade, 1);
    assert.equal(j.attemptsStarted, 1);
    assert.ok(j.processedOn > 0 && j.finishedOn >= j.processedOn);
    assert.equal(await j.getState(), 'completed');
    const ev = of(rec, 'completed', std.id);
    assert.equal(ev.length, 1);
    assert.deepEqual(ev[0].returnvalue, { name: 'std', data: { x: 1, u: 'ünï' } });
  });
  await check('8.2.1 options parsed by jobq: delay, timestamp', async () => {
    const d = await queue.getJob(delayed.id);
    assert.ok(d.processedOn >= d.timestamp + 800, `${d.processedOn - d.timestamp}`);
    assert.equal((await queue.getJob(tsj.id)).timestamp, ts);
  });
  await check('8.2.3 retries and final failure seen by Node', async () => {
    const f = await queue.getJob(flaky.id);
    assert.equal(await f.getState(), 'completed');
    assert.equal(f.attemptsMade, 3);
    assert.equal(of(rec, 'delayed', flaky.id).length, 2);
    assert.equal(await faDone, 'boom 1');
    const j = await queue.getJob(fa.id);
    assert.equal(await j.getState(), 'failed');
    assert.equal(j.attemptsMade, 2);
    assert.equal(j.failedReason, 'boom 1');
    assert.ok(Array.isArray(j.stacktrace));
    assert.equal(of(rec, 'failed', fa.id).length, 1);
    assert.equal(of(rec, 'retries-exhausted', fa.id).length, 1);
    assert.equal(Number(of(rec, 'retries-exhausted', fa.id)[0].attemptsMade), 2);
    assert.equal(await queue.getJob('rof-exp'), undefined);
    assert.equal(of(rec, 'retries-exhausted', 'rof-exp').length, 1);
  });
  await check('8.2.4 progress and logs written by jobq', async () => {
    const j = await queue.getJob(prog.id);
    assert.deepEqual(j.progress, { step: 'two' });
    const p = of(rec, 'progress', prog.id).map((e) => e.data);
    assert.deepEqual(p, [42, { step: 'two' }]);
    const logs = await queue.getJobLogs(prog.id);
    assert.deepEqual(logs.logs, ['line two']);
  });
  await check('8.2.5 counts and lists after the jobq worker', async () => {
    assert.equal(await queue.getJob(roc.id), undefined);
    const c = await queue.getJobCounts();
    assert.deepEqual([c.waiting, c.active, c.delayed, c.prioritized, c.completed, c.failed],
      [0, 0, 0, 0, 8, 1]);
    const completed = await queue.getCompleted();
    assert.equal(completed.length, 8);
    assert.ok(of(rec, 'drained').length >= 1);
  });
}

// --- 8.4 stalled recovery ---------------------------------------------------------------------
async function stalled() {
  const qname = `ic-${tag}`;
  const rec = await recorder(qname);
  const queue = new Queue(qname, { connection });
  closers.push(() => queue.close());
  const job = await queue.add('stally', { s: 1 });
  const got = jobq('stall', url, qname); // jobq fetches with a 300 ms lock and "crashes"
  let ran = null;
  const worker = new Worker(qname, async (j) => { ran = j; return 'recovered'; },
    { connection, stalledInterval: 400, maxStalledCount: 1 });
  closers.push(() => worker.close());
  await check('8.4.1 Node recovers a job a crashed jobq worker held', async () => {
    assert.equal(got.id, job.id);
    await until(() => ran !== null, 5000, 'recovery');
    assert.equal(ran.id, job.id);
    assert.equal(of(rec, 'stalled', job.id).length, 1);
    const w = of(rec, 'waiting', job.id).filter((e) => e.prev === 'active');
    assert.equal(w.length, 1);
  });
  await worker.close();

  // and the other way: a Node job held by a lock that expires, recovered by the jobq reaper
  const job2 = await queue.add('stally2', {});
  const w2 = new Worker(qname, null, { connection, lockDuration: 300 });
  closers.push(() => w2.close());
  const j2 = await w2.getNextJob('tok-node-crashed');
  await check('8.4.2 jobq reaper recovers a job a crashed Node worker held', async () => {
    assert.equal(j2.id, job2.id);
    await w2.close(true);
    const stats = jobq('work', url, qname, '300');
    assert.equal(stats.completed, 1);
    const j = await queue.getJob(job2.id);
    assert.equal(await j.getState(), 'completed');
    assert.equal(of(rec, 'stalled', job2.id).length, 1);
  });
}

(async () => {
  try {
    const recs = [await jobqToNode()];
    await nodeToJobq();
    await stalled();
    await check('QueueEvents never errored', () => {
      for (const r of recs) assert.deepEqual(r.errors, []);
    });
  } catch (e) {
    failures++;
    console.log(`FAIL unexpected\n${e.stack}`);
  }
  for (const c of closers.reverse()) { try { await c(); } catch (e) { /* closing */ } }
  console.log(failures ? `${failures} check(s) failed` : 'all checks passed');
  process.exit(failures ? 1 : 0);
})();
