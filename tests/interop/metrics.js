// Metrics (issue 16): BullMQ's per-minute counts of finished jobs, written by a jobq worker
// with metrics on and read by Node's getMetrics, and written by Node and read by jobq's
// jobq_queue_metrics. Called by interop.js with its helpers.
'use strict';
const assert = require('assert/strict');
const { waitFor, opener } = require('./common');

// What BullMQ's finish script leaves after seeding {count, prevTS, prevCount, data} and one
// more finish at `at` with `max` points.
function expected(seed, at, max) {
  const n = Math.min(Math.floor(at / 60000) - Math.floor(seed.prevTS / 60000), max);
  if (n <= 0) return { meta: { count: seed.count + 1, prevTS: seed.prevTS, prevCount: seed.prevCount }, data: seed.data };
  const data = [...Array(n - 1).fill(0), seed.count - seed.prevCount, ...seed.data].slice(0, max);
  return { meta: { count: seed.count + 1, prevTS: at, prevCount: seed.count }, data, count: data.length };
}

module.exports = async function metrics(h) {
  const { check, jobq, url, tag, connection, Queue, Worker, client, closers } = h;
  const open = opener(Queue, connection, closers);
  const until = waitFor;
  async function seed(qname, kind, s) {
    const key = `bull:${qname}:metrics:${kind}`;
    await client.hset(key, 'count', s.count, 'prevTS', s.prevTS, 'prevCount', s.prevCount);
    await client.rpush(`${key}:data`, ...s.data);
  }

  const qa = `im-${tag}`;
  const a = open(qa);
  await check('16.m1 a jobq worker with metrics: Node getMetrics counts its completions and final failures', async () => {
    const t0 = Date.now();
    await a.addBulk([1, 2, 3, 4, 5].map((i) => ({ name: 'ok', data: { i } })));
    await a.add('fail-always', {}, { attempts: 1 });
    await a.add('fail-always', {}, { attempts: 1 });
    await a.add('flaky', {}, { attempts: 3 }); // two failed attempts are not counted
    assert.deepEqual(jobq('work', url, qa, '300', '10'), { completed: 6, failed: 4 });
    const done = await a.getMetrics('completed');
    const failed = await a.getMetrics('failed');
    assert.equal(done.meta.count, 6);
    assert.equal(failed.meta.count, 2);
    for (const m of [done, failed]) {
      assert.ok(m.meta.prevTS >= t0 && m.meta.prevTS <= Date.now(), `prevTS ${m.meta.prevTS}`);
      assert.ok(m.data.length <= 1, 'at most one minute passed'); // (a minute boundary)
      assert.equal(m.count, m.data.length);
    }
  });
  await check('16.m2 jobq reads the metrics its worker wrote as Node does', async () => {
    for (const kind of ['completed', 'failed']) {
      assert.deepEqual(jobq('metrics', url, qa, kind), await a.getMetrics(kind));
    }
  });
  await check('16.m3 a queue without metrics reads as Node reads it', async () => {
    const q = `im0-${tag}`;
    assert.deepEqual(jobq('metrics', url, q, 'completed'), await open(q).getMetrics('completed'));
    assert.deepEqual(jobq('metrics', url, q, 'completed'), { meta: { count: 0, prevTS: 0, prevCount: 0 }, data: [], count: 0 });
  });

  // The minutes: seeded 3 minutes back, one finish closes the old minute, adds zeros for the
  // empty ones and trims to maxDataPoints (4), by Node's worker and by jobq's alike.
  const minute = Math.floor(Date.now() / 60000) * 60000;
  const s = { count: 7, prevTS: minute - 3 * 60000 + 30000, prevCount: 2, data: [4, 1] };
  const byNode = `imn-${tag}`, byJobq = `imj-${tag}`;
  const qn = open(byNode), qj = open(byJobq);
  for (const [qname, queue] of [[byNode, qn], [byJobq, qj]]) {
    for (const kind of ['completed', 'failed']) await seed(qname, kind, s);
    await queue.add('ok', {});
    await queue.add('fail-always', {}, { attempts: 1 });
  }
  const w = new Worker(byNode, async (job) => {
    if (job.name === 'fail-always') throw new Error('boom');
    return 1;
  }, { connection, metrics: { maxDataPoints: 4 } });
  closers.push(() => w.close());
  await until(async () => (await qn.getJobCounts('completed', 'failed')).failed === 1 &&
    (await qn.getJobCounts('completed')).completed === 1, 10000, 'the Node worker');
  await w.close();
  assert.deepEqual(jobq('work', url, byJobq, '300', '4'), { completed: 1, failed: 1 });
  for (const [who, qname, queue] of [['Node', byNode, qn], ['jobq', byJobq, qj]]) {
    await check(`16.m4 minutes closed by ${who}'s worker as BullMQ 6.7.0 closes them`, async () => {
      for (const [kind, jobState] of [['completed', 'completed'], ['failed', 'failed']]) {
        const [job] = await queue.getJobs([jobState]);
        const want = expected(s, job.finishedOn, 4);
        const got = await queue.getMetrics(kind);
        assert.deepEqual(got.meta, want.meta, `${kind} meta`);
        assert.deepEqual(got.data, want.data, `${kind} data`);
      }
    });
    await check(`16.m5 jobq reads the metrics ${who}'s worker wrote as Node does`, async () => {
      for (const kind of ['completed', 'failed']) {
        assert.deepEqual(jobq('metrics', url, qname, kind), await queue.getMetrics(kind));
      }
    });
  }
};
