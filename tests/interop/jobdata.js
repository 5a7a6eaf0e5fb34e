// Job data and failure bookkeeping (issue 16): stackTraceLimit applied by jobq workers to
// Node's jobs and by Node workers to jobq's jobs. Called by interop.js with its helpers.
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
};
