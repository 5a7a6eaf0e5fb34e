// The job scheduler checks of the BullMQ interop (docs/protocol.md §8.5.2, issue 15), run by
// interop.js with its helpers: whoever fetches an iteration creates the next one, on either
// side; schedulers created by either side look the same to the other.
'use strict';
const { execFileSync } = require('child_process');
const assert = require('assert/strict');

let Queue, Worker, client, connection, tag, url, bin, v5, check, until, recorder, of, seen, serve,
  closers;

// --- 8.5.2 job schedulers: whoever fetches an iteration creates the next one ------------------
// The pending iterations of scheduler `sid` (waiting, prioritized or delayed), read in one step.
const PENDING_LUA = `local out = {}
local function take(ids)
  for _, id in ipairs(ids) do
    if string.sub(id, 1, #ARGV[2]) == ARGV[2] then out[#out + 1] = id end
  end
end
take(redis.call('LRANGE', ARGV[1] .. 'wait', 0, -1))
take(redis.call('ZRANGE', ARGV[1] .. 'prioritized', 0, -1))
take(redis.call('ZRANGE', ARGV[1] .. 'delayed', 0, -1))
return out`;
const millisOf = (id) => Number(id.slice(id.lastIndexOf(':') + 1));
async function schedulers8521() {
  const qname = `is-${tag}`;
  const P = `bull:${qname}:`;
  const rec = await recorder(qname);
  const queue = new Queue(qname, { connection });
  closers.push(() => queue.close());
  const every = 150;
  const pending = () => client.eval(PENDING_LUA, 0, P, 'repeat:s:');
  // sampled all along: never two pending iterations
  let most = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      most = Math.max(most, (await pending()).length);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const first = await queue.upsertJobScheduler('s', { every },
    { name: 'tick', data: { t: 1 }, opts: { attempts: 2, removeOnComplete: 50 } });
  const ticks = (list) => list.filter((id) => id.startsWith('repeat:s:'));

  let jw = serve(qname, 1);
  await check('8.5.2 Node scheduler (every) iterates under a jobq worker alone', async () => {
    await until(() => ticks(jw.done).length >= 5, 20000, () => `5 iterations by jobq (have ${jw.done})`);
    await jw.stop();
    const ran = ticks(jw.done);
    assert.equal(ran[0], first.id);
    const left = await pending();
    assert.equal(left.length, 1, `pending ${left}`);
    const sched = await client.hgetall(`${P}repeat:s`);
    assert.equal(Number(sched.ic), ran.length + 1);
    assert.equal(Number(await client.zscore(`${P}repeat`, 's')), millisOf(left[0]));
    const ms = [...ran, left[0]].map(millisOf);
    for (let i = 1; i < ms.length; i++) {
      assert.ok(ms[i] > ms[i - 1] && (ms[i] - ms[0]) % every === 0, `iteration times ${ms}`);
    }
  });
  await check('8.5.2 jobq-created iterations look like Node-created ones', async () => {
    const ran = ticks(jw.done);
    const fields = (h) => Object.keys(h).filter((k) => !['processedOn', 'finishedOn', 'ats', 'atm',
      'returnvalue', 'pb'].includes(k)).sort();
    const node = await client.hgetall(P + first.id);
    const mine = await client.hgetall(P + ran[2]);
    assert.deepEqual(fields(mine), fields(node));
    assert.equal(mine.rjk, 's');
    assert.equal(mine.name, 'tick');
    assert.deepEqual(JSON.parse(mine.data), { t: 1 });
    const o = JSON.parse(mine.opts);
    assert.equal(o.jobId, ran[2]);
    assert.equal(o.repeatJobKey, 's');
    assert.deepEqual(o.repeat, { every, count: 3 });
    assert.equal(o.attempts, 2);
    assert.equal(o.removeOnComplete, 50);
    assert.ok(o.delay >= 0 && o.delay <= every, `delay ${o.delay}`);
    assert.equal(o.timestamp, Number(mine.timestamp));
    const job = await queue.getJob(ran[2]);
    assert.equal(job.repeatJobKey, 's');
    assert.equal(job.opts.repeat.count, 3);
    for (const id of ran.slice(1)) {
      await seen(rec, 'added', id, 1);
      const d = of(rec, 'delayed', id);
      assert.ok(d.length === 1 ? Number(d[0].delay) === millisOf(id) : of(rec, 'waiting', id).length >= 1,
        `events of ${id}`);
    }
  });

  const nodeRan = [];
  const nw = new Worker(qname, async (job) => { nodeRan.push(job.id); return { by: 'node' }; },
    { connection });
  closers.push(() => nw.close());
  await check('8.5.2 a Node worker joining later keeps the series running', async () => {
    await until(() => ticks(nodeRan).length >= 3, 20000, () => `3 iterations by Node (have ${nodeRan})`);
    const left = millisOf(ticks(jw.done).at(-1)) + every;
    assert.ok(millisOf(nodeRan[0]) >= left, `${nodeRan[0]} after ${jw.done.at(-1)}`);
  });
  const jw2 = serve(qname, 2);
  await jw2.whenReady();
  await check('8.5.2 mixed Node and jobq workers: one series, each iteration once', async () => {
    const n0 = ticks(nodeRan).length;
    await until(() => ticks(nodeRan).length - n0 + ticks(jw2.done).length >= 8, 20000,
      () => `8 more iterations (Node ${nodeRan.length - n0}, jobq ${jw2.done.length})`);
    await nw.close();
    await jw2.stop();
    const all = [...ticks(jw.done), ...ticks(nodeRan), ...ticks(jw2.done)];
    assert.equal(new Set(all).size, all.length, 'an iteration ran twice');
    const left = await pending();
    assert.equal(left.length, 1, `pending ${left}`);
    const ms = [...all.map(millisOf), millisOf(left[0])].sort((a, b) => a - b);
    for (let i = 1; i < ms.length; i++) assert.ok(ms[i] > ms[i - 1] && (ms[i] - ms[0]) % every === 0);
    const sched = await client.hgetall(`${P}repeat:s`);
    assert.equal(Number(sched.ic), all.length + 1);
    sampling = false;
    await sampler;
    assert.equal(most, 1, 'two pending iterations at once');
  });
  sampling = false;
  await sampler;

  // a cron pattern with a time zone and a limit, under a jobq worker alone
  const pq = `isp-${tag}`;
  const pqueue = new Queue(pq, { connection });
  closers.push(() => pqueue.close());
  const pfirst = await pqueue.upsertJobScheduler('p', { pattern: '* * * * * *', tz: 'Europe/Paris', limit: 4 },
    { name: 'cron', data: { c: 1 } });
  const pw = serve(pq, 1);
  await check('8.5.2 Node scheduler (pattern, tz, limit) iterates under a jobq worker alone', async () => {
    const ran = () => pw.done.filter((id) => id.startsWith('repeat:p:'));
    await until(() => ran().length >= 4, 20000, () => `4 iterations by jobq (have ${pw.done})`);
    await pw.stop();
    const ids = ran();
    assert.equal(ids.length, 4);
    assert.equal(ids[0], pfirst.id);
    const ms = ids.map(millisOf);
    for (let i = 1; i < ms.length; i++) assert.ok(ms[i] > ms[i - 1] && ms[i] % 1000 === 0, `times ${ms}`);
    assert.deepEqual(await client.eval(PENDING_LUA, 0, `bull:${pq}:`, 'repeat:p:'), []);
    assert.equal((await client.hgetall(`bull:${pq}:repeat:p`)).ic, '4');
    const o = JSON.parse(await client.hget(`bull:${pq}:${ids[3]}`, 'opts'));
    assert.deepEqual(o.repeat, { pattern: '* * * * * *', tz: 'Europe/Paris', limit: 4, count: 4 });
    assert.equal(o.prevMillis, ms[3]);
    assert.equal(o.jobId, ids[3]);
  });

  // a pattern jobq cannot evaluate: the iteration runs, the series ends, nothing loops
  const bq = `isb-${tag}`;
  const bqueue = new Queue(bq, { connection });
  closers.push(() => bqueue.close());
  const bfirst = await bqueue.upsertJobScheduler('b', { pattern: '0 0 1 1 *' }, { name: 'bad', data: {} });
  const bkey = `bull:${bq}:${bfirst.id}`;
  const bopts = JSON.parse(await client.hget(bkey, 'opts'));
  bopts.repeat.pattern = '61 * * * * *';
  await client.hset(bkey, 'opts', JSON.stringify(bopts));
  await bqueue.promoteJobs();
  const bw = serve(bq, 1);
  await check('8.5.2 an iteration whose pattern jobq cannot evaluate runs once, the series ends', async () => {
    await until(() => bw.done.includes(bfirst.id), 10000, 'the iteration ran');
    await bw.stop();
    assert.deepEqual(bw.started, [bfirst.id]);
    assert.deepEqual(await client.eval(PENDING_LUA, 0, `bull:${bq}:`, 'repeat:b:'), []);
    assert.equal((await client.hgetall(`bull:${bq}:repeat:b`)).ic, '1');
  });
}


// --- the other way: schedulers created by jobq (jobq_queue_upsert_scheduler) -----------------
const jobq = (...args) => JSON.parse(execFileSync(bin, args, { encoding: 'utf8', timeout: 30000 }));
// Samples the pending iterations of scheduler `sid` until stop(); `most` is the largest count.
function sampler(P, sid) {
  const s = { most: 0, on: true };
  s.done = (async () => {
    while (s.on) {
      s.most = Math.max(s.most, (await client.eval(PENDING_LUA, 0, P, `repeat:${sid}:`)).length);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  s.stop = async () => { s.on = false; await s.done; return s.most; };
  return s;
}
// What getJobScheduler shows but for the times, which differ between two creations.
const shape = (j) => { const { key, next, startDate, ...rest } = j; return rest; };

async function schedulersBothWays() {
  const qname = `isj-${tag}`;
  const P = `bull:${qname}:`;
  const queue = new Queue(qname, { connection });
  closers.push(() => queue.close());
  const every = 150;
  const smp = sampler(P, 'j');
  const first = jobq('schedule', url, qname, 'j', `every=${every}`, 'name=jtick', 'data={"j":1}',
    'attempts=2', 'remove_on_complete=50');
  const ran = [];
  const nw = new Worker(qname, async (job) => { ran.push(job); return 1; }, { connection });
  closers.push(() => nw.close());
  await check('8.5.2 a jobq scheduler (every) iterates under a Node worker', async () => {
    await until(() => ran.length >= 6, 20000, () => `6 iterations by Node (have ${ran.length})`);
    await nw.close();
    assert.equal(ran[0].id, first.id);
    const ms = ran.map((j) => millisOf(j.id));
    // a late start skips slots (realigned to the offset), never shifts them
    for (let i = 1; i < ms.length; i++) {
      assert.ok(ms[i] > ms[i - 1] && (ms[i] - ms[0]) % every === 0, `times ${ms}`);
    }
    for (const j of ran) {
      assert.equal(j.name, 'jtick');
      assert.deepEqual(j.data, { j: 1 });
      assert.equal(j.opts.attempts, 2);
      assert.equal(j.repeatJobKey, 'j');
    }
    assert.equal(await smp.stop(), 1, 'two pending iterations at once');
    const left = await client.eval(PENDING_LUA, 0, P, 'repeat:j:');
    assert.equal(left.length, 1);
    assert.equal(Number((await client.hgetall(`${P}repeat:j`)).ic), ran.length + 1);
  });

  await check("8.5.2 Node's getJobSchedulers shows jobq's schedulers as Node's own", async () => {
    const start = Date.now() + 3600e3;
    const end = start + 86400e3;
    const nodeSide = { pattern: '0 30 * * * *', tz: 'America/New_York', limit: 7, startDate: start, endDate: end };
    await queue.upsertJobScheduler('n', nodeSide, { name: 'rep', data: { x: [1, 2] }, opts: { attempts: 4, priority: 3 } });
    jobq('schedule', url, qname, 'q', 'pattern=0 30 * * * *', 'tz=America/New_York', 'limit=7',
      `start=${start}`, `end=${end}`, 'name=rep', 'data={"x":[1,2]}', 'attempts=4');
    const n = await queue.getJobScheduler('n');
    const q = await queue.getJobScheduler('q');
    delete n.template.opts.priority; // jobq_interop's template sets no priority
    assert.deepEqual(shape(q), shape(n));
    assert.equal(q.next, n.next);
    const all = await queue.getJobSchedulers();
    assert.deepEqual(all.map((j) => j.key).sort(), ['j', 'n', 'q']);
    const qi = await queue.getJob(`repeat:q:${q.next}`);
    const ni = await queue.getJob(`repeat:n:${n.next}`);
    assert.deepEqual(qi.opts.repeat, ni.opts.repeat);
    assert.equal(await qi.getState(), 'delayed');
    assert.equal(qi.opts.prevMillis, q.next);
    // and jobq reads Node's
    const mine = jobq('schedulers', url, qname);
    const jn = mine.find((x) => x.id === 'n');
    assert.deepEqual([jn.pattern, jn.tz, jn.limit, jn.iterations, jn.next, jn.data],
      ['0 30 * * * *', 'America/New_York', 7, 1, n.next, { x: [1, 2] }]);
    assert.equal(jn.opts.attempts, 4);
  });

  await check('8.5.2 a jobq update replaces the pending iteration of a Node scheduler', async () => {
    await queue.upsertJobScheduler('u', { every: 60000 }, { name: 'u1', data: { v: 1 } });
    const before = await client.eval(PENDING_LUA, 0, P, 'repeat:u:');
    jobq('schedule', url, qname, 'u', 'every=60000', 'name=u2', 'data={"v":2}');
    const after = await client.eval(PENDING_LUA, 0, P, 'repeat:u:');
    assert.deepEqual(after, before);
    const j = await queue.getJob(after[0]);
    assert.equal(j.name, 'u2');
    assert.deepEqual(j.data, { v: 2 });
    assert.equal((await queue.getJobScheduler('u')).name, 'u2');
    // Node's update of a jobq scheduler, the same
    await queue.upsertJobScheduler('q', { pattern: '0 45 * * * *' }, { name: 'rep2' });
    const q = await queue.getJobScheduler('q');
    assert.deepEqual(await client.eval(PENDING_LUA, 0, P, 'repeat:q:'), [`repeat:q:${q.next}`]);
  });

  await check('8.5.2 removing a scheduler from either side', async () => {
    const q = await queue.getJobScheduler('q');
    jobq('unschedule', url, qname, 'q');
    assert.equal(await queue.getJobScheduler('q'), undefined);
    assert.equal(await queue.getJob(`repeat:q:${q.next}`), undefined);
    await queue.removeJobScheduler('n');
    assert.deepEqual(jobq('schedulers', url, qname).map((x) => x.id).sort(), ['j', 'u']);
  });

  // a Node pattern scheduler with a time zone and a limit under mixed Node and jobq workers
  const mq = `ism-${tag}`;
  const mP = `bull:${mq}:`;
  const mqueue = new Queue(mq, { connection });
  closers.push(() => mqueue.close());
  const msmp = sampler(mP, 'm');
  const limit = 8;
  await mqueue.upsertJobScheduler('m', { pattern: '* * * * * *', tz: 'Asia/Kolkata', limit },
    { name: 'mix', data: {} });
  const nodeRan = [];
  const mw = new Worker(mq, async (job) => { nodeRan.push(job.id); }, { connection });
  closers.push(() => mw.close());
  const jw = serve(mq, 1);
  await check('8.5.2 Node scheduler (pattern, tz, limit) under mixed workers: each iteration once', async () => {
    await until(() => nodeRan.length + jw.done.length >= limit, 30000,
      () => `${limit} iterations (Node ${nodeRan}, jobq ${jw.done})`);
    await mw.close();
    await jw.stop();
    const all = [...nodeRan, ...jw.done];
    assert.equal(all.length, limit);
    assert.equal(new Set(all).size, limit, 'an iteration ran twice');
    const ms = all.map(millisOf).sort((a, b) => a - b);
    for (let i = 1; i < ms.length; i++) assert.ok(ms[i] > ms[i - 1] && ms[i] % 1000 === 0, `times ${ms}`);
    assert.deepEqual(await client.eval(PENDING_LUA, 0, mP, 'repeat:m:'), []);
    assert.equal((await client.hgetall(`${mP}repeat:m`)).ic, String(limit));
    assert.equal(await msmp.stop(), 1, 'two pending iterations at once');
  });
}

// --- the soak (JOBQ_INTEROP_SOAK=1, ctest interop.bullmq.sched_soak, label slow) -------------
// Two schedulers every 100 ms on one queue, one made by Node and one by jobq, under one Node and
// two jobq workers for a minute. For each: no iteration runs twice, every one is on the
// scheduler's grid, one is pending at a time, and none is missed: every iteration the
// scheduler created (its iteration count) ran, but the one pending when the workers stop.
// Slots skipped by late fetches (BullMQ realigns then too) are a matter of the machine's
// load: counted and reported, not asserted.
async function schedulerSoak() {
  const qname = `iss-${tag}`;
  const P = `bull:${qname}:`;
  const queue = new Queue(qname, { connection });
  closers.push(() => queue.close());
  const every = 100;
  const sids = ['k', 'kj'];
  const smp = sids.map((sid) => sampler(P, sid));
  const nodeRan = [];
  const nw = new Worker(qname, async (job) => { nodeRan.push(job.id); }, { connection });
  closers.push(() => nw.close());
  const jw = [serve(qname, 1), serve(qname, 1)];
  await Promise.all(jw.map((w) => w.whenReady()));
  await queue.upsertJobScheduler('k', { every }, { name: 'soak', data: {} });
  jobq('schedule', url, qname, 'kj', `every=${every}`, 'name=soakj', 'data={}');
  const t0 = Date.now();
  await check('soak: two schedulers (Node, jobq) every 100 ms for a minute under mixed workers', async () => {
    await until(() => Date.now() - t0 >= 60000, 70000, 'a minute');
    await nw.close();
    for (const w of jw) await w.stop();
    const report = [];
    for (const [i, sid] of sids.entries()) {
      const mine = (id) => id.startsWith(`repeat:${sid}:`);
      const all = [...nodeRan, ...jw[0].done, ...jw[1].done].filter(mine);
      assert.equal(new Set(all).size, all.length, `${sid}: an iteration ran twice`);
      const ms = all.map(millisOf).sort((a, b) => a - b);
      let skipped = 0;
      for (let k = 1; k < ms.length; k++) {
        const gap = ms[k] - ms[k - 1];
        assert.ok(gap > 0 && gap % every === 0, `${sid}: iteration ${ms[k]} off the grid after ${ms[k - 1]}`);
        skipped += gap / every - 1;
      }
      const left = await client.eval(PENDING_LUA, 0, P, `repeat:${sid}:`);
      assert.equal(left.length, 1, `${sid}: pending ${left}`);
      assert.ok(millisOf(left[0]) > ms.at(-1), `${sid}: pending ${left[0]} not after the last run`);
      const ic = Number((await client.hgetall(`${P}repeat:${sid}`)).ic);
      assert.equal(ic, all.length + 1, `${sid}: ${ic} iterations created, ${all.length} ran (+1 pending)`);
      assert.equal(await smp[i].stop(), 1, `${sid}: two pending iterations at once`);
      const byNode = nodeRan.filter(mine).length;
      report.push(`${sid}: ${all.length} iterations (Node ${byNode}, jobq ${all.length - byNode}), ` +
        `0 missed, 0 twice, ${skipped} slots skipped by late fetches`);
    }
    for (const sid of sids) await queue.removeJobScheduler(sid);
    for (const line of report) console.log(`# soak ${line}`);
  });
}

module.exports = async (t) => {
  ({ Queue, Worker, client, connection, tag, url, bin, v5, check, until, recorder, of, seen, serve,
    closers } = t);
  await schedulers8521();
  if (!v5) await schedulersBothWays();
  if (!v5 && process.env.JOBQ_INTEROP_SOAK) await schedulerSoak();
};
