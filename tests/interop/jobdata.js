// Job data and failure bookkeeping (issue 16): stackTraceLimit applied by jobq workers to
// Node's jobs and by Node workers to jobq's jobs; jobq's linear backoff as Node workers see it
// (a custom strategy named "linear") and Node's "linear" jobs as jobq workers run them.
// Called by interop.js with its helpers.
'use strict';
const assert = require('assert/strict');
const { waitFor, opener } = require('./common');

module.exports = async function jobdata(h) {
  const { check, jobq, url, tag, connection, Queue, Worker, client, closers } = h;
  const open = opener(Queue, connection, closers);
  const until = waitFor;
  // A Node worker on `qname` whose processor is `fn`, closed by the caller.
  function nodeWorker(qname, fn) {
    const w = new Worker(qname, fn, { connection });
    w.on('error', () => {});
    return w;
  }

  const qa = `id1-${tag}`;
  const a = open(qa);
  await check('16.d1 stackTraceLimit of a Node job failed by a jobq worker: the newest N lines stay', async () => {
    const two = await a.add('fail-always', {}, { attempts: 4, stackTraceLimit: 2 });
    const none = await a.add('fail-always', {}, { attempts: 3, stackTraceLimit: 0 });
    const all = await a.add('fail-always', {}, { attempts: 3 });
    jobq('work', url, qa, '300');
    const j2 = await a.getJob(two.id);
    assert.equal(await j2.getState(), 'failed');
    assert.equal(j2.attemptsMade, 4);
    const view = jobq('inspect', url, qa, two.id, none.id, all.id);
    assert.deepEqual(j2.stacktrace, view.jobs[two.id].stacktrace);
    assert.deepEqual(j2.stacktrace, ['boom 2', 'boom 3']);
    const j0 = await a.getJob(none.id);
    assert.deepEqual(j0.stacktrace, []);
    assert.equal(await client.hget(`bull:${qa}:${none.id}`, 'stacktrace'), '[]');
    assert.deepEqual((await a.getJob(all.id)).stacktrace, ['boom 0', 'boom 1', 'boom 2']);
  });

  const qb = `id2-${tag}`;
  const b = open(qb);
  await check('16.d2 stackTraceLimit of a jobq job failed by a Node worker: Node reads jobq\'s option', async () => {
    const two = jobq('addopt', url, qb, 'n', '{}', 'attempts=4', 'stl=2').id;
    const none = jobq('addopt', url, qb, 'n', '{}', 'attempts=2', 'stl=none').id;
    assert.equal((await b.getJob(two)).opts.stackTraceLimit, 2);
    assert.equal((await b.getJob(none)).opts.stackTraceLimit, 0);
    const w = nodeWorker(qb, async (job) => { throw new Error(`node ${job.attemptsMade + 1}`); });
    try {
      await until(async () => (await b.getFailedCount()) === 2, 10000, 'two failed jobs');
    } finally {
      await w.close();
    }
    const j2 = await b.getJob(two);
    assert.equal(j2.stacktrace.length, 2);
    assert.match(j2.stacktrace[0], /^Error: node 3/);
    assert.match(j2.stacktrace[1], /^Error: node 4/);
    const view = jobq('inspect', url, qb, two, none);
    assert.deepEqual(view.jobs[two].stacktrace, j2.stacktrace);
    assert.deepEqual(view.jobs[none].stacktrace, []);
  });

  // The strategy docs/bullmq-compatibility.md gives Node workers for jobq's linear type.
  const linear = (attemptsMade, type, err, job) => {
    if (type !== 'linear') return -1;
    const { delay = 0, jitter = 0, maxDelay } = job.opts.backoff;
    let d = delay * attemptsMade;
    if (jitter > 0) d = Math.floor(Math.random() * d * jitter + d * (1 - jitter));
    return maxDelay > 0 ? Math.min(d, maxDelay) : d;
  };

  const qc = `id3-${tag}`;
  const c = open(qc);
  await check('16.d3 a jobq job with linear backoff: a Node worker with the "linear" strategy waits delay x attempt', async () => {
    const id = jobq('addopt', url, qc, 'n', '{}', 'attempts=4', 'backoff=linear:40', 'max=100').id;
    assert.deepEqual((await c.getJob(id)).opts.backoff, { type: 'linear', delay: 40, maxDelay: 100 });
    const seen = [];
    const w = new Worker(qc, async () => { throw new Error('boom'); }, {
      connection,
      settings: { backoffStrategy: (n, type, err, job) => { const d = linear(n, type, err, job); seen.push([type, n, d]); return d; } },
    });
    w.on('error', () => {});
    try {
      await until(async () => (await c.getFailedCount()) === 1, 10000, 'the job failed for good');
    } finally {
      await w.close();
    }
    assert.deepEqual(seen, [['linear', 1, 40], ['linear', 2, 80], ['linear', 3, 100]]);
    assert.equal((await c.getJob(id)).attemptsMade, 4);
  });

  const qd = `id4-${tag}`;
  const d = open(qd);
  await check('16.d4 a jobq job with linear backoff: a Node worker without the strategy errors and leaves it active', async () => {
    const id = jobq('addopt', url, qd, 'n', '{}', 'attempts=3', 'backoff=linear:40').id;
    const errors = [];
    const w = new Worker(qd, async () => { throw new Error('boom'); }, { connection });
    w.on('error', (e) => errors.push(e.message));
    try {
      await until(async () => errors.length > 0, 10000, 'the worker\'s error');
      assert.match(errors[0], /Unknown backoff strategy linear/);
      const j = await d.getJob(id);
      assert.equal(await j.getState(), 'active');
      assert.equal(j.attemptsMade, 0);
    } finally {
      await w.close();
    }
  });

  const qe = `id5-${tag}`;
  const e = open(qe);
  await check('16.d5 a Node job with backoff type "linear": a jobq worker applies its built-in', async () => {
    const job = await e.add('fail-always', {}, { attempts: 3, backoff: { type: 'linear', delay: 600000 } });
    const key = `bull:${qe}:${job.id}`;
    jobq('work', url, qe, '300');
    assert.equal(await e.getJobState(job.id), 'delayed');
    assert.equal(await client.hget(key, 'delay'), '600000');
    await (await e.getJob(job.id)).promote();
    jobq('work', url, qe, '300');
    assert.equal(await e.getJobState(job.id), 'delayed');
    assert.equal(await client.hget(key, 'delay'), '1200000');
    await (await e.getJob(job.id)).promote();
    jobq('work', url, qe, '300');
    const j = await e.getJob(job.id);
    assert.equal(await j.getState(), 'failed');
    assert.equal(j.attemptsMade, 3);
  });

  // [[...[1]...]] `n` levels deep, as a value.
  const deep = (n) => JSON.parse('['.repeat(n) + '1' + ']'.repeat(n));
  const qf = `id6-${tag}`;
  const f = open(qf);
  await check('16.d6 data limits: Node\'s three-part ids, deep data and \\u0000 through a jobq worker, unchanged', async () => {
    const data = { s: 'a\u0000b', d: deep(3000) };
    await f.add('echo', data, { jobId: 'n:o:de' });
    jobq('work', url, qf, '300');
    const j = await f.getJob('n:o:de');
    assert.equal(await j.getState(), 'completed');
    // (assert.deepEqual recurses too deep for these: compare the JSON texts)
    assert.equal(JSON.stringify(j.data), JSON.stringify(data));
    assert.equal(JSON.stringify(j.returnvalue), JSON.stringify({ name: 'echo', data }));
    const view = jobq('inspect', url, qf, 'n:o:de');
    assert.equal(view.jobs['n:o:de'].state, 'completed');
  });
  await check('16.d7 data limits: jobq\'s three-part ids and deep data, read by Node unchanged', async () => {
    const text = '['.repeat(3000) + '1' + ']'.repeat(3000);
    assert.equal(jobq('addopt', url, qf, 'deep', `{"s":"x\\u0000y","d":${text}}`, 'id=j:q:x').id, 'j:q:x');
    const j = await f.getJob('j:q:x');
    assert.equal(JSON.stringify(j.data), JSON.stringify({ s: 'x\u0000y', d: deep(3000) }));
    const refused = jobq('addopt', url, qf, 'n', '{}', 'id=a:b');
    assert.equal(refused.error, 'JOBQ_EINVAL');
    assert.match(refused.message, /three-part/);
  });
};
