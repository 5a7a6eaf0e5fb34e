// BullMQ <-> jobq interop basics on Redis Cluster: Node uses ioredis's Cluster client and a
// `{tag}` prefix (what BullMQ requires on a cluster), jobq a redis+cluster:// URL with the same
// prefix. Against the bullmq package in JOBQ_INTEROP_MODULES (default ./node_modules: 6.7.0).
// usage: node cluster.js <path to jobq_interop> <cluster fixture directory (holds `ports`)>
// Prints "ok <check>" / "FAIL <check>" lines; exits non-zero on any failure.
'use strict';
const fs = require('fs');
const path = require('path');
const mods = process.env.JOBQ_INTEROP_MODULES || path.join(__dirname, 'node_modules');
const { Queue, Worker, QueueEvents } = require(path.join(mods, 'bullmq'));
const IORedis = require(path.join(mods, 'ioredis'));
const bullmqVersion = require(path.join(mods, 'bullmq', 'package.json')).version;
const { execFileSync } = require('child_process');
const assert = require('assert/strict');

const [, , bin, dir] = process.argv;
const ports = fs.readFileSync(path.join(dir, 'ports'), 'utf8').trim().split(/\s+/).map(Number);
const prefix = `{jqi${process.pid}}`;
const url = `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}?prefix=${prefix}`;
const newCluster = () =>
  new IORedis.Cluster(ports.map((port) => ({ host: '127.0.0.1', port })), {
    redisOptions: { maxRetriesPerRequest: null },
  });
const connection = newCluster();
console.log(`# bullmq ${bullmqVersion} on a cluster of ${ports.length} nodes`);
const closers = [];

const common = require('./common');
const { check, until } = common;
const jobq = common.runner(bin);

// jobq adds, a Node worker runs the jobs.
async function jobqToNode() {
  const qname = 'c1';
  const queue = new Queue(qname, { connection, prefix });
  closers.push(() => queue.close());
  const ids = jobq('addn', url, qname, '20', 'from-jobq');
  const done = new Set();
  const worker = new Worker(qname, async (job) => ({ by: 'node', name: job.name, data: job.data }), {
    connection: newCluster(),
    prefix,
  });
  worker.on('completed', (job) => done.add(job.id));
  closers.push(() => worker.close());
  await check('C.1 a Node worker runs the jobs jobq added on the cluster', async () => {
    await until(() => done.size === 20, 30000, () => `20 completions, ${done.size} seen`);
    assert.deepEqual([...done].sort(), [...ids].sort());
    const j = await queue.getJob(ids[0]);
    assert.deepEqual(j.data, { c: 'jobq' });
    assert.deepEqual(j.returnvalue, { by: 'node', name: 'from-jobq', data: { c: 'jobq' } });
    assert.equal((await queue.getJobCounts()).completed, 20);
  });
}

// Node adds, a jobq worker runs the jobs, a Node QueueEvents sees them completed.
async function nodeToJobq() {
  const qname = 'c2';
  const queue = new Queue(qname, { connection, prefix });
  closers.push(() => queue.close());
  const qe = new QueueEvents(qname, { connection: newCluster(), prefix, lastEventId: '0' });
  const completed = new Set();
  qe.on('completed', ({ jobId }) => completed.add(jobId));
  closers.push(() => qe.close());
  await qe.waitUntilReady();
  const jobs = await queue.addBulk(Array.from({ length: 20 }, (_, i) => ({ name: 'plain', data: { i } })));
  const prio = await queue.add('prio', { p: 1 }, { priority: 2 });
  const delayed = await queue.add('delayed', { d: 1 }, { delay: 300 });
  const stats = jobq('work', url, qname, '700');
  await check('C.2 a jobq worker runs the jobs Node added on the cluster', async () => {
    assert.equal(stats.completed, 22);
    const j = await queue.getJob(jobs[3].id);
    assert.deepEqual(j.returnvalue, { name: 'plain', data: { i: 3 } });
    assert.equal(await j.getState(), 'completed');
    assert.equal(await (await queue.getJob(prio.id)).getState(), 'completed');
    assert.equal(await (await queue.getJob(delayed.id)).getState(), 'completed');
  });
  await check('C.3 a Node QueueEvents on the cluster sees jobq complete them', async () => {
    await until(() => completed.size === 22, 10000, () => `22 completed events, ${completed.size} seen`);
  });
}

// jobq refuses a prefix without a hash tag on a cluster; BullMQ's keys would spread.
async function untagged() {
  await check('C.4 jobq refuses a queue whose keys would spread over slots', () => {
    const bad = url.replace(`prefix=${prefix}`, 'prefix=bull');
    let out = '';
    try {
      execFileSync(bin, ['addn', bad, 'c4', '1', 'x'], { encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      out = `${e.stdout}${e.stderr}`;
    }
    assert.match(out, /hash tag/);
  });
}

(async () => {
  try {
    await jobqToNode();
    await nodeToJobq();
    await untagged();
    for (const q of ['c1', 'c2']) {
      const queue = new Queue(q, { connection, prefix });
      await queue.obliterate({ force: true });
      await queue.close();
    }
  } catch (e) {
    common.counts.failures++;
    console.log(`FAIL unexpected\n${e.stack}`);
  }
  for (const c of closers.reverse()) {
    try {
      await c();
    } catch (e) {
      /* closing */
    }
  }
  await connection.quit();
  const failures = common.counts.failures;
  console.log(failures ? `${failures} check(s) failed` : 'all checks passed');
  process.exit(failures ? 1 : 0);
})();
