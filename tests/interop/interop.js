// BullMQ <-> jobq interop on one Redis server (docs/protocol.md §8), against the bullmq
// package in JOBQ_INTEROP_MODULES (default ./node_modules: 6.7.0; v5/node_modules: 5.x).
// usage: node interop.js <path to jobq_interop> <redis unix socket>
// Prints "ok <check>" / "FAIL <check>" lines; exits non-zero on any failure.
'use strict';
const path = require('path');
const mods = process.env.JOBQ_INTEROP_MODULES || path.join(__dirname, 'node_modules');
const { Queue, Worker, QueueEvents, FlowProducer } = require(path.join(mods, 'bullmq'));
const IORedis = require(path.join(mods, 'ioredis'));
const bullmqVersion = require(path.join(mods, 'bullmq', 'package.json')).version;
const v5 = bullmqVersion.startsWith('5.');
const { spawn } = require('child_process');
const readline = require('readline');
const assert = require('assert/strict');

const [, , bin, sock] = process.argv;
const url = `redis+unix://${sock}`;
const connection = { path: sock, maxRetriesPerRequest: null };
const tag = `${process.pid}-${Date.now()}`;
console.log(`# bullmq ${bullmqVersion}`);
let client; // plain ioredis client for raw key checks
let failures = 0;
const closers = [];
const recs = [];

const common = require('./common');
const { check, until } = common;
const jobq = common.runner(bin);
// A QueueEvents that records every event it emits (entry id included) and must never
// report an error.
async function recorder(qname, prefix = 'bull') {
  const qe = new QueueEvents(qname, { connection, prefix, lastEventId: '0' });
  const rec = { events: [], errors: [], qe };
  const emit = qe.emit.bind(qe);
  qe.emit = (name, ...args) => {
    if (name === 'error') rec.errors.push(args[0]);
    else if (!name.includes(':') && typeof args[0] === 'object' && typeof args[1] === 'string') {
      rec.events.push({ event: name, ...(args[0] || {}), id: args[1] });
    } else if (name === 'drained' && typeof args[0] === 'string') {
      rec.events.push({ event: name, id: args[0] });
    }
    return emit(name, ...args);
  };
  qe.on('error', () => {});
  await qe.waitUntilReady();
  closers.push(() => qe.close());
  recs.push(rec);
  return rec;
}
const of = (rec, event, jobId) => rec.events.filter((e) => e.event === event && (jobId === undefined || e.jobId === jobId));
// The events `event` of `jobId` once the recorder has read `n` of them: each QueueEvents reads
// the stream on its own, so the recorder may lag behind the one a job's promise waited on.
async function seen(rec, event, jobId, n) {
  await until(() => of(rec, event, jobId).length >= n, 5000, () => `${n} ${event} events of job ${jobId} in the recorder`);
  return of(rec, event, jobId);
}

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
    const ev = await seen(rec, 'completed', std.id, 1);
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
    assert.equal((await seen(rec, 'delayed', flaky.id, 2)).length, 2);
    assert.equal(await faDone, 'boom 1');
    const j = await queue.getJob(fa.id);
    assert.equal(await j.getState(), 'failed');
    assert.equal(j.attemptsMade, 2);
    assert.equal(j.failedReason, 'boom 1');
    assert.ok(Array.isArray(j.stacktrace));
    assert.equal((await seen(rec, 'failed', fa.id, 1)).length, 1);
    assert.equal((await seen(rec, 'retries-exhausted', fa.id, 1)).length, 1);
    assert.equal(Number(of(rec, 'retries-exhausted', fa.id)[0].attemptsMade), 2);
    assert.equal(await queue.getJob('rof-exp'), undefined);
    assert.equal((await seen(rec, 'retries-exhausted', 'rof-exp', 1)).length, 1);
  });
  await check('8.2.4 progress and logs written by jobq', async () => {
    const j = await queue.getJob(prog.id);
    assert.deepEqual(j.progress, { step: 'two' });
    const p = (await seen(rec, 'progress', prog.id, 2)).map((e) => e.data);
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

// --- helpers for long-running jobq workers ---------------------------------------------------
const children = [];
// Starts `jobq_interop serve`: a jobq worker in its own process. Lines "start <id>" and
// "done <id>" are recorded; stop() closes its stdin (graceful close) and waits for it.
function serve(qname, conc = 1, lockMs = 0, prefix = 'bull') {
  const u = prefix === 'bull' ? url : `${url}?prefix=${encodeURIComponent(prefix)}`;
  const p = spawn(bin, ['serve', u, qname, String(conc), String(lockMs)],
    { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(p);
  const w = { p, started: [], done: [], ready: false, stats: null, exited: false };
  const exited = new Promise((resolve) => p.on('exit', (code, sig) => { w.exited = true; resolve({ code, sig }); }));
  readline.createInterface({ input: p.stdout }).on('line', (line) => {
    const [what, arg] = [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1)];
    if (what === 'ready') w.ready = true;
    else if (what === 'start') w.started.push(arg);
    else if (what === 'done') w.done.push(arg);
    else if (what === 'stats') w.stats = JSON.parse(arg);
  });
  w.whenReady = () => until(() => w.ready || w.exited, 10000, 'jobq worker ready');
  w.stop = async () => { p.stdin.end(); const r = await exited; assert.equal(r.code, 0); };
  w.kill = async () => { p.kill('SIGKILL'); return exited; };
  closers.push(() => { if (!w.exited) p.kill('SIGKILL'); });
  return w;
}
const b64 = (s) => Buffer.from(s).toString('base64');
// Asserts that `cond` stays true for `ms` (a window in which nothing may happen).
async function holds(cond, ms, what) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    assert.ok(cond(), what);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(cond(), what);
}

// --- flows: a Node FlowProducer's children processed by a jobq worker (issue 14) -------------
// The parent in one queue, its children in another, each child's finish by jobq updating the
// parent as Node's would: `:dependencies`, `:processed`, `:failed`, the release to waiting
// (event waiting, prev waiting-children) and, for failParentOnFailure, the parent's failure.
async function flowRun(prefix, suffix) {
  const pq = `ifp${suffix}-${tag}`;
  const cq = `ifc${suffix}-${tag}`;
  const conn = prefix === 'bull' ? { connection } : { connection, prefix };
  const rec = await recorder(pq, prefix);
  const flow = new FlowProducer(conn);
  closers.push(() => flow.close());
  const pqueue = new Queue(pq, conn);
  closers.push(() => pqueue.close());
  const child = (n, opts) => ({ name: 'child', queueName: cq, data: { n }, opts });
  const fail = (opts) => ({ name: 'fail-always', queueName: cq, data: {}, opts });
  const trees = {
    ok: await flow.add({ name: 'parent', queueName: pq, data: { p: 1 }, children: [child(1), child(2)] }),
    prio: await flow.add({ name: 'parent', queueName: pq, data: {}, opts: { priority: 4 }, children: [child(3)] }),
    removed: await flow.add({ name: 'parent', queueName: pq, data: {}, children: [child(8)] }),
    delayed: await flow.add({ name: 'parent', queueName: pq, data: {}, opts: { delay: 600000 }, children: [child(7)] }),
    idof: await flow.add({ name: 'parent', queueName: pq, data: {},
      children: [child(4), fail({ ignoreDependencyOnFailure: true })] }),
    rdof: await flow.add({ name: 'parent', queueName: pq, data: {},
      children: [fail({ removeDependencyOnFailure: true })] }),
    plain: await flow.add({ name: 'parent', queueName: pq, data: {}, children: [fail()] }),
  };
  if (!v5) {
    trees.fpof = await flow.add({ name: 'parent', queueName: pq, data: {},
      children: [child(5), fail({ failParentOnFailure: true })] });
    trees.cpof = await flow.add({ name: 'parent', queueName: pq, data: {},
      children: [child(6, { delay: 60000 }), fail({ continueParentOnFailure: true })] });
  }
  const pid = (k) => trees[k].job.id;
  const ckey = (k, i) => `${prefix}:${cq}:${trees[k].children[i].job.id}`;
  const pkey = (k) => `${prefix}:${pq}:${pid(k)}`;
  const released = Object.keys(trees).filter((k) => k !== 'plain');
  const finished = released.filter((k) => k !== 'delayed');
  // a child removed by jobq before any worker ran it releases its parent too
  jobq('remove', prefix === 'bull' ? url : `${url}?prefix=${encodeURIComponent(prefix)}`, cq,
    trees.removed.children[0].job.id);
  const jw = serve(cq, 2, 0, prefix);
  await jw.whenReady();
  await check(`flows${suffix}: the jobq worker's finishes release the parents`, async () => {
    await untilAsync(async () => {
      for (const k of released) if ((await pqueue.getJobState(pid(k))) === 'waiting-children') return false;
      return true;
    }, 10000, 'parents released');
    assert.equal(await pqueue.getJobState(pid('ok')), 'waiting');
    assert.equal(await pqueue.getJobState(pid('prio')), 'prioritized');
    assert.equal(await pqueue.getJobState(pid('delayed')), 'delayed');
    const [delayed] = await seen(rec, 'delayed', pid('delayed'), 1);
    const due = Number(delayed.delay);
    assert.ok(due > Date.now() + 500000 && due <= Date.now() + 600000, `delayed until ${due}`);
    assert.equal(await pqueue.getJobState(pid('plain')), 'waiting-children');
    for (const k of finished) {
      const ev = await seen(rec, 'waiting', pid(k), 1);
      assert.equal(ev[0].prev, 'waiting-children', `${k}: waiting event's prev`);
    }
    assert.equal(await client.scard(`${pkey('ok')}:dependencies`), 0);
    assert.deepEqual(await client.hgetall(`${pkey('ok')}:processed`), {
      [ckey('ok', 0)]: '{"name":"child","data":{"n":1}}',
      [ckey('ok', 1)]: '{"name":"child","data":{"n":2}}',
    });
    assert.deepEqual(await client.hgetall(`${pkey('idof')}:failed`), { [ckey('idof', 1)]: 'boom 0' });
    assert.deepEqual(await client.hgetall(`${pkey('rdof')}:failed`), {});
    assert.deepEqual(await client.smembers(`${pkey('plain')}:dependencies`), [ckey('plain', 0)]);
    if (!v5) {
      assert.deepEqual(await client.zrange(`${pkey('fpof')}:unsuccessful`, 0, -1), [ckey('fpof', 1)]);
      assert.equal(await client.hget(pkey('fpof'), 'defa'), `child ${ckey('fpof', 1)} failed`);
      // continueParentOnFailure releases the parent though a (delayed) child is pending
      assert.deepEqual(await client.smembers(`${pkey('cpof')}:dependencies`), [ckey('cpof', 0)]);
      assert.deepEqual(await client.hgetall(`${pkey('cpof')}:failed`), { [ckey('cpof', 1)]: 'boom 0' });
    }
  });
  await jw.stop();
  const seenBy = {};
  const nw = new Worker(pq, async (job) => {
    seenBy[job.id] = { values: await job.getChildrenValues(), ignored: await job.getIgnoredChildrenFailures() };
    // a parent continued on a child's failure completes once its pending children are gone
    if (!v5 && job.id === pid('cpof')) await job.removeUnprocessedChildren();
    return 'parent done';
  }, conn);
  closers.push(() => nw.close());
  await check(`flows${suffix}: a Node worker finishes the released parents`, async () => {
    await untilAsync(async () => {
      for (const k of finished) {
        const st = await pqueue.getJobState(pid(k));
        if (st !== (k === 'fpof' ? 'failed' : 'completed')) return false;
      }
      return true;
    }, 10000, 'parents finished');
    assert.deepEqual(seenBy[pid('ok')].values, {
      [ckey('ok', 0)]: { name: 'child', data: { n: 1 } },
      [ckey('ok', 1)]: { name: 'child', data: { n: 2 } },
    });
    assert.deepEqual(seenBy[pid('idof')].values, { [ckey('idof', 0)]: { name: 'child', data: { n: 4 } } });
    assert.deepEqual(seenBy[pid('idof')].ignored, { [ckey('idof', 1)]: 'boom 0' });
    assert.deepEqual(seenBy[pid('rdof')].values, {});
    assert.deepEqual(seenBy[pid('removed')].values, {});
    if (!v5) {
      assert.deepEqual(seenBy[pid('cpof')].ignored, { [ckey('cpof', 1)]: 'boom 0' });
      assert.equal(seenBy[pid('fpof')], undefined, 'the failed parent did not run');
      assert.equal((await pqueue.getJob(pid('fpof'))).failedReason, `child ${ckey('fpof', 1)} failed`);
    }
    assert.equal(await pqueue.getJobState(pid('plain')), 'waiting-children');
    // jobq reads a Node flow's dependencies as Node does
    const u = prefix === 'bull' ? url : `${url}?prefix=${encodeURIComponent(prefix)}`;
    for (const k of ['ok', 'idof', 'plain']) {
      const nd = await (await pqueue.getJob(pid(k))).getDependencies();
      const jd = jobq('deps', u, pq, pid(k));
      assert.deepEqual([jd.processed, jd.unprocessed, jd.ignored, jd.failed],
        [nd.processed, nd.unprocessed, nd.ignored, nd.failed], k);
    }
  });
  await nw.close();
}
// Both queues of a Node flow served by jobq workers: the released parent runs under jobq, and
// a parent whose failParentOnFailure child failed is failed by jobq's fetch with BullMQ's reason.
async function flowAllJobq() {
  const pq = `ifpj-${tag}`;
  const cq = `ifcj-${tag}`;
  const flow = new FlowProducer({ connection });
  closers.push(() => flow.close());
  const pqueue = new Queue(pq, { connection });
  closers.push(() => pqueue.close());
  const ok = await flow.add({ name: 'parent', queueName: pq, data: { p: 2 },
    children: [{ name: 'child', queueName: cq, data: { n: 9 } }] });
  const fpof = v5 ? null : await flow.add({ name: 'parent', queueName: pq, data: {},
    children: [{ name: 'fail-always', queueName: cq, data: {}, opts: { failParentOnFailure: true } }] });
  const jw = [serve(cq), serve(pq)];
  await Promise.all(jw.map((w) => w.whenReady()));
  await check('flows: jobq workers on both queues finish a Node flow', async () => {
    await untilAsync(async () => (await pqueue.getJobState(ok.job.id)) === 'completed' &&
      (!fpof || (await pqueue.getJobState(fpof.job.id)) === 'failed'), 10000, 'parents finished');
    assert.deepEqual((await pqueue.getJob(ok.job.id)).returnvalue, { name: 'parent', data: { p: 2 } });
    assert.deepEqual(await (await pqueue.getJob(ok.job.id)).getChildrenValues(),
      { [`bull:${cq}:${ok.children[0].job.id}`]: { name: 'child', data: { n: 9 } } });
    if (fpof) {
      const failed = await pqueue.getJob(fpof.job.id);
      assert.equal(failed.failedReason, `child bull:${cq}:${fpof.children[0].job.id} failed`);
      assert.ok(!jw[1].started.includes(fpof.job.id), 'the failed parent did not run');
    }
  });
  await Promise.all(jw.map((w) => w.stop()));
}
// A flow that jobq adds (a child queue, a sub-parent, a child added later to the existing
// root), read by Node as its own and run to the end by Node and jobq workers together; the
// dependencies as jobq reads them equal Node's getDependencies.
async function flowFromJobq(prefix, suffix) {
  const pq = `ijp${suffix}-${tag}`;
  const cq = `ijc${suffix}-${tag}`;
  const conn = prefix === 'bull' ? { connection } : { connection, prefix };
  const u = prefix === 'bull' ? url : `${url}?prefix=${encodeURIComponent(prefix)}`;
  const rec = await recorder(pq, prefix);
  const pqueue = new Queue(pq, conn);
  const cqueue = new Queue(cq, conn);
  closers.push(() => pqueue.close(), () => cqueue.close());
  const ids = jobq('flow', u, pq, cq);
  const key = (q, id) => `${prefix}:${q}:${id}`;
  const sorted = (a) => [...a].sort();
  await check(`flows${suffix}: Node reads a flow jobq added`, async () => {
    assert.equal(await pqueue.getJobState(ids.root), 'waiting-children');
    assert.equal(await pqueue.getJobState(ids.sub), 'waiting-children');
    const c1 = await cqueue.getJob(ids.c1);
    assert.equal(c1.parentKey, key(pq, ids.root));
    assert.deepEqual(c1.parent, { id: ids.root, queueKey: `${prefix}:${pq}` });
    assert.deepEqual(c1.opts.parent, { id: ids.root, queue: `${prefix}:${pq}` });
    assert.deepEqual((await cqueue.getJob(ids.fail)).parent,
      { id: ids.root, queueKey: `${prefix}:${pq}`, idof: true });
    const deps = await (await pqueue.getJob(ids.root)).getDependencies();
    assert.deepEqual(sorted(deps.unprocessed),
      sorted([key(cq, ids.c1), key(cq, ids.fail), key(cq, ids.c3), key(pq, ids.sub)]));
    assert.deepEqual(jobq('deps', u, pq, ids.root).unprocessed.sort(), sorted(deps.unprocessed));
  });
  const late = jobq('child', u, cq, pq, ids.root).id;
  const jw = serve(cq, 2, 0, prefix);
  await jw.whenReady();
  const nw = new Worker(cq, async (job) => {
    if (job.name === 'fail-always') throw new Error(`boom ${job.attemptsMade}`);
    return { name: job.name, data: job.data };
  }, conn);
  const seenBy = {};
  const pw = new Worker(pq, async (job) => {
    seenBy[job.id] = { values: await job.getChildrenValues(), ignored: await job.getIgnoredChildrenFailures() };
    return { name: job.name, data: job.data };
  }, conn);
  closers.push(() => nw.close(), () => pw.close());
  await check(`flows${suffix}: Node and jobq workers run a jobq flow to the end`, async () => {
    await untilAsync(async () => (await pqueue.getJobState(ids.root)) === 'completed', 15000, 'root completed');
    assert.deepEqual(seenBy[ids.root].values, {
      [key(cq, ids.c1)]: { name: 'c1', data: { n: 1 } },
      [key(cq, ids.c3)]: { name: 'c3', data: { n: 3 } },
      [key(cq, late)]: { name: 'late', data: { n: 9 } },
      [key(pq, ids.sub)]: { name: 'sub', data: { s: 1 } },
    });
    assert.deepEqual(seenBy[ids.sub].values, { [key(cq, ids.g)]: { name: 'g', data: { n: 5 } } });
    assert.deepEqual(seenBy[ids.root].ignored, { [key(cq, ids.fail)]: 'boom 0' });
    const nd = await (await pqueue.getJob(ids.root)).getDependencies();
    const jd = jobq('deps', u, pq, ids.root);
    assert.deepEqual(jd.processed, nd.processed);
    assert.deepEqual(jd.ignored, nd.ignored);
    assert.deepEqual(jd.unprocessed, []);
    assert.deepEqual(jd.failed, nd.failed);
    const [w] = await seen(rec, 'waiting', ids.root, 1);
    assert.equal(w.prev, 'waiting-children');
  });
  await jw.stop();
  await nw.close();
  await pw.close();
}
async function flows() {
  await flowRun('bull', '');
  await flowRun('{jq}', 't');
  await flowAllJobq();
  await flowFromJobq('bull', '');
  await flowFromJobq('{jq}', 't');
}

// --- 8.2.6 Queue.getWorkers lists a waiting jobq worker (client name, §6.3) ---------------------
async function workersListed() {
  const qname = `iw-${tag}`;
  const queue = new Queue(qname, { connection });
  closers.push(() => queue.close());
  await recorder(qname); // a QueueEvents (named ...:qe) must not count as a worker
  assert.deepEqual(await queue.getWorkers(), []);
  const w = serve(qname, 3);
  await w.whenReady();
  await check('8.2.6 Queue.getWorkers() lists the waiting jobq worker', async () => {
    let workers = [];
    await untilAsync(async () => (workers = await queue.getWorkers()).length >= 1, 5000, 'worker listed');
    assert.equal(workers.length, 1); // a named worker (default host:pid), listed once
    assert.ok(workers[0].rawname.startsWith(`bull:${b64(qname)}:w:`), workers[0].rawname);
    assert.equal(await queue.getWorkersCount(), 1);
  });
  await w.stop();
  await check('8.2.6 a closed jobq worker is no longer listed', async () => {
    await untilAsync(async () => (await queue.getWorkers()).length === 0, 5000, 'worker gone');
  });
}
async function untilAsync(cond, ms, what) {
  const t0 = Date.now();
  for (;;) {
    if (await cond()) return;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// --- 8.3.1 jobq and Node workers on one queue ----------------------------------------------------
async function mixedWorkers() {
  const qname = `im-${tag}`;
  const rec = await recorder(qname);
  const queue = new Queue(qname, { connection });
  closers.push(() => queue.close());
  const jw = [serve(qname, 5), serve(qname, 5)];
  await Promise.all(jw.map((w) => w.whenReady()));
  const nodeRuns = [];
  const nw = [];
  for (let i = 0; i < 2; i++) {
    const w = new Worker(qname, async (job) => {
      nodeRuns.push(job.id);
      await new Promise((r) => setTimeout(r, 1)); // 1 ms of simulated work, as jobq's "mixed"
      return { by: 'node' };
    }, { connection, concurrency: 5 });
    closers.push(() => w.close());
    nw.push(w);
  }
  const nodeIds = (await queue.addBulk(Array.from({ length: 1000 }, (_, i) =>
    ({ name: 'mixed', data: { c: 'node', i } })))).map((j) => j.id);
  const jobqIds = jobq('addn', url, qname, '1000', 'mixed');
  const all = [...nodeIds, ...jobqIds];
  const total = () => nodeRuns.length + jw[0].done.length + jw[1].done.length;
  await check('8.3.1 2 jobq + 2 Node workers: 2000 jobs, each run exactly once', async () => {
    assert.equal(new Set(all).size, 2000);
    await until(() => total() >= 2000, 60000, () => `2000 jobs (have ${total()})`);
    await untilAsync(async () => (await queue.getJobCounts('completed')).completed === 2000, 10000, 'completed 2000');
    const ran = [...nodeRuns, ...jw[0].done, ...jw[1].done];
    assert.equal(ran.length, 2000, 'a job ran twice');
    assert.deepEqual([...new Set(ran)].sort(), [...all].sort());
    assert.ok(nodeRuns.length > 0 && jw[0].done.length + jw[1].done.length > 0,
      `both sides worked: node ${nodeRuns.length}, jobq ${jw[0].done.length}+${jw[1].done.length}`);
    const c = await queue.getJobCounts();
    assert.deepEqual([c.waiting, c.active, c.delayed, c.prioritized, c.failed], [0, 0, 0, 0, 0]);
        assert.equal(await client.llen(`bull:${qname}:active`), 0);
    // the events reach the QueueEvents recorder after the counts change: wait for them
    await until(() => of(rec, 'completed').length >= 2000 && of(rec, 'drained').length >= 1,
      10000, () => `events: completed ${of(rec, 'completed').length}, drained ${of(rec, 'drained').length}`);
    assert.equal(of(rec, 'completed').length, 2000);
  });
  await Promise.all(nw.map((w) => w.close()));
  await Promise.all(jw.map((w) => w.stop()));
  await check('8.3.1 Pstalled empty after both sides closed', async () => {
        await untilAsync(async () => {
      // a stall check copies active (now empty) into stalled: the set ends up empty
      return (await client.scard(`bull:${qname}:stalled`)) === 0;
    }, 5000, 'stalled set empty');
  });
}

// --- events: Node QueueEvents sees every event of jobs jobq processes ----------------------------
async function eventsJobqToNode() {
  const qname = `ie-${tag}`;
  const rec = await recorder(qname);
  const queue = new Queue(qname, { connection });
  closers.push(() => queue.close());
  const ids = jobq('add', url, qname, 'events');
  jobq('remove', url, qname, ids['remove-me']);
  jobq('pause', url, qname);
  jobq('resume', url, qname);
  const stats = jobq('work', url, qname, '500');
  const one = (event, id) => {
    const e = of(rec, event, id);
    assert.equal(e.length, 1, `${event} ${id}: ${JSON.stringify(e)}`);
    return e[0];
  };
  await check('events of jobq-processed jobs reach Node QueueEvents with their fields', async () => {
    assert.equal(stats.completed, 6);
    await until(() => of(rec, 'resumed').length === 1 && of(rec, 'retries-exhausted').length === 1,
      5000, 'events');
    for (const n of ['std', 'progress', 'flaky', 'fail-always', 'delayed', 'remove-me', 'custom', 'dd-owner']) {
      assert.equal(one('added', ids[n]).name, n);
    }
    // std: waiting, active (prev waiting), completed with parsed returnvalue (prev active)
    assert.equal(of(rec, 'waiting', ids.std).length, 1);
    assert.equal(one('active', ids.std).prev, 'waiting');
    const c = one('completed', ids.std);
    assert.deepEqual(c.returnvalue, { name: 'std', data: { a: 1 } });
    assert.equal(c.prev, 'active');
    // progress: number then object, parsed
    assert.deepEqual(of(rec, 'progress', ids.progress).map((e) => e.data), [42, { step: 'two' }]);
    // flaky: 2 retries through delayed (absolute due time) then completed
    const fl = await queue.getJob(ids.flaky);
    const fd = of(rec, 'delayed', ids.flaky).map((e) => Number(e.delay));
    assert.equal(fd.length, 2);
    assert.ok(fd.every((d) => d > fl.timestamp && d < fl.timestamp + 60000), `${fd}`);
    assert.equal(of(rec, 'waiting', ids.flaky).filter((e) => e.prev === 'delayed').length, 2);
    assert.equal(of(rec, 'active', ids.flaky).length, 3);
    assert.equal(of(rec, 'failed', ids.flaky).length, 0);
    one('completed', ids.flaky);
    // fail-always: 3 attempts, one failed with failedReason, one retries-exhausted
    assert.equal(of(rec, 'active', ids['fail-always']).length, 3);
    const f = one('failed', ids['fail-always']);
    assert.equal(f.failedReason, 'boom 2');
    assert.equal(f.prev, 'active');
    assert.equal(one('retries-exhausted', ids['fail-always']).attemptsMade, '3');
    // delayed add: delay is the absolute due time
    const dj = await queue.getJob(ids.delayed);
    assert.equal(Number(one('delayed', ids.delayed).delay), dj.timestamp + 300);
    assert.equal(one('waiting', ids.delayed).prev, 'delayed');
    // removed, duplicated, deduplicated, paused, resumed, drained
    assert.equal(one('removed', ids['remove-me']).prev, 'delayed');
    one('duplicated', 'ev-custom');
    const dd = one('deduplicated', ids['dd-owner']);
    assert.equal(dd.deduplicationId, 'ev-dd');
    assert.ok(dd.deduplicatedJobId && dd.deduplicatedJobId !== ids['dd-owner']);
    assert.equal(ids['dd-dup'], ids['dd-owner']);
    assert.equal(of(rec, 'paused').length, 1);
    assert.ok(of(rec, 'drained').length >= 1);
  });
}

// --- events: jobq's event reader sees Node's events; progress and logs both ways -----------------
async function eventsNodeToJobq() {
  const qname = `if-${tag}`;
  const rec = await recorder(qname);
  const queue = new Queue(qname, { connection });
  closers.push(() => queue.close());
  const std = await queue.add('std', { n: 1 });
  const prog = await queue.add('prog', {}, { keepLogs: 2 });
  const fail = await queue.add('fail', {}, { attempts: 2, backoff: { type: 'fixed', delay: 50 } });
  const del = await queue.add('del', {}, { delay: 200 });
  const rm = await queue.add('rm', {}, { delay: 600000 });
  await queue.add('cust', {}, { jobId: 'nf-custom' });
  await queue.add('cust', {}, { jobId: 'nf-custom' });
  await rm.remove();
  await queue.pause();
  await queue.resume();
  // jobq writes progress and a log line on a job Node added (still waiting)
  jobq('progress', url, qname, prog.id, '{"from":"jobq"}', 'jobq line');
  let done = 0;
  const w = new Worker(qname, async (job) => {
    if (job.name === 'prog') {
      await job.updateProgress({ pct: 50 });
      await job.log('node line 1');
      await job.log('node line 2');
      await job.updateProgress(100);
    }
    if (job.name === 'fail') throw new Error(`node fail ${job.attemptsMade}`);
    return { node: job.name };
  }, { connection });
  closers.push(() => w.close());
  w.on('completed', () => done++);
  w.on('failed', (job) => { if (job.attemptsMade >= 2) done++; });
  await until(() => done >= 5, 10000, 'node jobs');
  await until(() => of(rec, 'drained').length >= 1 && of(rec, 'retries-exhausted').length === 1, 5000, 'events');
  await w.close();
  const view = jobq('inspect', url, qname, std.id, prog.id, fail.id, del.id, rm.id);
  await check('progress and logs: jobq reads what Node wrote, Node reads what jobq wrote', async () => {
    const p = view.jobs[prog.id];
    assert.equal(p.progress, '100');
    assert.deepEqual(p.logs, ['node line 1', 'node line 2']); // keepLogs 2 trimmed jobq's line
    assert.deepEqual(of(rec, 'progress', prog.id).map((e) => e.data), [{ from: 'jobq' }, { pct: 50 }, 100]);
  });
  await check('getJobCounts / getJob / getState agree with jobq\'s view', async () => {
    const c = await queue.getJobCounts();
    const jc = view.counts;
    for (const k of ['active', 'delayed', 'prioritized', 'completed', 'failed']) assert.equal(jc[k], c[k], k);
    assert.equal(jc.waiting + jc.paused, c.waiting + (c.paused || 0));
    for (const id of [std.id, prog.id, fail.id, del.id]) {
      const j = await queue.getJob(id);
      const v = view.jobs[id];
      assert.equal(v.state, await j.getState(), `state of ${id}`);
      assert.equal(v.attemptsMade, j.attemptsMade, `attemptsMade of ${id}`);
      assert.equal(v.attemptsStarted, j.attemptsStarted, `attemptsStarted of ${id}`);
      assert.equal(v.name, j.name);
      if (j.returnvalue !== undefined && j.returnvalue !== null) assert.deepEqual(JSON.parse(v.result), j.returnvalue);
      if (j.failedReason) assert.equal(v.failedReason, j.failedReason);
    }
    assert.equal(view.jobs[rm.id], null);
    assert.equal(view.jobs[fail.id].failedReason, 'node fail 1');
  });
  const events = jobq('events', url, qname);
  await check('jobq_events_read sees every event Node wrote, with the same fields', async () => {
        assert.equal(events.length, await client.xlen(`bull:${qname}:events`));
    const byId = new Map(events.map((e) => [e.id, e]));
    const norm = (k, v) => ((k === 'returnvalue' || k === 'data') ? JSON.parse(v) : v);
    assert.ok(rec.events.length >= 20, `${rec.events.length} events`);
    for (const n of rec.events) {
      const j = byId.get(n.id);
      assert.ok(j, `event ${n.id} ${n.event} missing in jobq's read`);
      assert.equal(j.event, n.event);
      for (const [k, v] of Object.entries(n)) {
        if (k === 'id' || k === 'event') continue;
        assert.deepEqual(k in j ? norm(k, j[k]) : undefined, k === 'delay' ? String(v) : v,
          `${n.event} ${n.id} field ${k}`);
      }
    }
    const names = new Set(events.map((e) => e.event));
    for (const e of ['added', 'waiting', 'delayed', 'active', 'progress', 'completed', 'failed',
      'retries-exhausted', 'removed', 'duplicated', 'paused', 'resumed', 'drained']) {
      assert.ok(names.has(e), `no ${e} event`);
    }
  });
}

// --- pause and resume from either side stop and restart both kinds of worker ---------------------
async function pauseResume() {
  const qname = `ip-${tag}`;
  const queue = new Queue(qname, { connection });
  closers.push(() => queue.close());
  const jw = serve(qname, 2);
  await jw.whenReady();
  const nodeRuns = [];
  const nw = new Worker(qname, async (job) => {
    nodeRuns.push(job.id);
    await new Promise((r) => setTimeout(r, 20)); // as jobq's "slow"
  }, { connection, concurrency: 2 });
  closers.push(() => nw.close());
  await nw.waitUntilReady();
  const ran = () => nodeRuns.length + jw.done.length;

  await check('pause by Node stops jobq and Node workers; resume by jobq restarts both', async () => {
    await queue.pause();
    assert.equal(jobq('inspect', url, qname).isPaused, true);
    await queue.addBulk(Array.from({ length: 10 }, () => ({ name: 'slow', data: {} })));
    jobq('addn', url, qname, '10', 'slow');
    const v = jobq('inspect', url, qname);
    assert.equal(v.counts.waiting + v.counts.paused, 20);
    await holds(() => ran() === 0 && jw.started.length === 0, 500, 'a job ran while paused');
    jobq('resume', url, qname);
    assert.equal(await queue.isPaused(), false);
    await until(() => ran() === 20, 10000, () => `20 jobs (have ${ran()})`);
    assert.ok(nodeRuns.length > 0 && jw.done.length > 0, `node ${nodeRuns.length}, jobq ${jw.done.length}`);
  });
  await check('pause by jobq stops both; resume by Node restarts both', async () => {
    const n0 = nodeRuns.length;
    const j0 = jw.done.length;
    jobq('pause', url, qname);
    assert.equal(await queue.isPaused(), true);
    // 5.x adds to the legacy paused list while the queue is paused, and its resume RENAMEs
    // that list over the wait list: jobs jobq added meanwhile (6.x style, to wait) would be
    // lost (docs/protocol.md §7). With 5.x peers only Node adds during this pause.
    await queue.addBulk(Array.from({ length: v5 ? 20 : 10 }, () => ({ name: 'slow', data: {} })));
    if (!v5) jobq('addn', url, qname, '10', 'slow');
    await holds(() => nodeRuns.length === n0 && jw.started.length === j0, 500,
      `a job ran while paused: node ${nodeRuns.length}/${n0}, jobq ${jw.started.length}/${j0}`);
    const c = await queue.getJobCounts('waiting', 'paused');
    assert.equal(c.waiting + (c.paused || 0), 20);
    await queue.resume();
    assert.equal(jobq('inspect', url, qname).isPaused, false);
    await until(() => ran() === 40, 10000, () => `40 jobs (have ${ran()})`);
    assert.ok(nodeRuns.length > n0 && jw.done.length > j0, `node ${nodeRuns.length - n0}, jobq ${jw.done.length - j0}`);
  });
  await nw.close();
  await jw.stop();
}

// --- 8.1.8 deduplication between the two sides ---------------------------------------------------
async function dedup() {
  const qname = `id-${tag}`;
  const rec = await recorder(qname);
  const queue = new Queue(qname, { connection });
  closers.push(() => queue.close());
  await check('8.1.8 dedup: Node owner + jobq duplicate, and the other way', async () => {
    const owner = await queue.add('dedup', { by: 'node' }, { deduplication: { id: 'dx' } });
    const r = jobq('dedup', url, qname, 'dx');
    assert.deepEqual(r, { id: owner.id, outcome: 2 });
    const mine = jobq('dedup', url, qname, 'dy');
    assert.equal(mine.outcome, 0);
    const dup = await queue.add('dedup', { by: 'node' }, { deduplication: { id: 'dy' } });
    assert.equal(dup.id, mine.id);
    assert.equal(await queue.getDeduplicationJobId('dy'), mine.id);
    assert.equal((await queue.getJob(mine.id)).data.by, 'jobq');
    assert.equal((await queue.getJobCounts()).waiting, 2);
    await until(() => of(rec, 'deduplicated').length === 2, 5000, 'deduplicated events');
    assert.deepEqual(of(rec, 'deduplicated').map((e) => [e.jobId, e.deduplicationId]),
      [[owner.id, 'dx'], [mine.id, 'dy']]);
  });
}

// --- 8.4 stalled recovery after kill -9, both ways -----------------------------------------------
async function killed() {
  const qname = `ik-${tag}`;
  const rec = await recorder(qname);
  const queue = new Queue(qname, { connection });
  closers.push(() => queue.close());

  const job = await queue.add('hang', { s: 1 });
  const jw = serve(qname, 1, 1000); // 1 s lock
  await until(() => jw.started.length === 1, 10000, 'jobq started the job');
  await jw.kill();
  let ran = null;
  const worker = new Worker(qname, async (j) => { ran = j; return 'recovered'; },
    { connection, stalledInterval: 300, maxStalledCount: 1 });
  closers.push(() => worker.close());
  await check('8.4.1 Node recovers the job of a jobq worker killed with -9', async () => {
    assert.equal(jw.started[0], job.id);
    await until(() => ran !== null, 10000, 'recovery');
    assert.equal(ran.id, job.id);
    assert.equal(ran.stalledCounter, 1);
    await until(() => of(rec, 'completed', job.id).length === 1, 3000, 'completed');
    assert.equal(of(rec, 'stalled', job.id).length, 1);
    assert.equal(of(rec, 'waiting', job.id).filter((e) => e.prev === 'active').length, 1);
  });
  await worker.close();

  const job2 = await queue.add('hang2', {});
  const np = spawn(process.execPath, [path.join(__dirname, 'node_worker.js'), sock, qname, '1000'],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, JOBQ_INTEROP_MODULES: mods } });
  children.push(np);
  const nstarted = [];
  readline.createInterface({ input: np.stdout }).on('line', (l) => nstarted.push(l.split(' ')[1]));
  const nexit = new Promise((r) => np.on('exit', r));
  await check('8.4.2 jobq recovers the job of a Node worker killed with -9', async () => {
    await until(() => nstarted.length === 1, 10000, 'Node started the job');
    assert.equal(nstarted[0], job2.id);
    np.kill('SIGKILL');
    await nexit;
    const w = serve(qname, 1);
    await until(() => w.done.includes(job2.id), 10000, 'jobq recovery');
    await w.stop();
    const j = await queue.getJob(job2.id);
    assert.equal(await j.getState(), 'completed');
    assert.equal(j.stalledCounter, 1);
    assert.equal(of(rec, 'stalled', job2.id).length, 1);
  });
}

// --- 8.5.2 job schedulers (schedulers.js) ---------------------------------------------------
const schedulers = () => require('./schedulers.js')({
  Queue, Worker, client, connection, tag, url, bin, v5, check, until, recorder, of, seen, serve,
  closers,
});

(async () => {
  try {
    client = new IORedis({ path: sock });
    closers.push(() => client.quit());
    await jobqToNode();
    await nodeToJobq();
    await workersListed();
    await mixedWorkers();
    await eventsJobqToNode();
    await eventsNodeToJobq();
    await pauseResume();
    await dedup();
    await killed();
    await schedulers();
    await flows();
    await require('./metrics.js')({ check, jobq, url, tag, connection, Queue, Worker, client, closers });
    await require('./jobdata.js')({ check, jobq, url, tag, connection, Queue, Worker, client, closers });
    await check('QueueEvents never errored', () => {
      for (const r of recs) {
        assert.deepEqual(r.errors, []);
        assert.equal(r.qe.running, true, 'a QueueEvents stopped');
      }
    });
  } catch (e) {
    failures++;
    console.log(`FAIL unexpected\n${e.stack}`);
  }
  for (const c of closers.reverse()) { try { await c(); } catch (e) { /* closing */ } }
  for (const p of children) if (p.exitCode === null) p.kill('SIGKILL');
  failures += common.counts.failures;
  console.log(failures ? `${failures} check(s) failed` : 'all checks passed');
  process.exit(failures ? 1 : 0);
})();
