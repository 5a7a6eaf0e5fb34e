// BullMQ 6.7.0 <-> jobq on one Redis server: the job semantics of issue 16, driven through the
// `jobq` command (so the command's flags are covered too): the worker's name (pb, getWorkers),
// deduplication keepLastIfActive finished by a jobq worker (both outcomes, the later owner),
// the worker's keep policies both ways.
// usage: node semantics.js <path to jobq> <redis unix socket>
// Prints "ok <case>" / "FAIL <case>" lines; exits non-zero on any failure.
'use strict';
const path = require('path');
const fs = require('fs');
const os = require('os');
const mods = process.env.JOBQ_INTEROP_MODULES || path.join(__dirname, 'node_modules');
const { Queue, Worker } = require(path.join(mods, 'bullmq'));
const IORedis = require(path.join(mods, 'ioredis'));
const { execFileSync, spawn } = require('child_process');
const assert = require('assert/strict');

const [, , jobqPath, sock] = process.argv;
const env = { ...process.env, JOBQ_URL: `redis+unix://${sock}` };
const connection = { path: sock, maxRetriesPerRequest: null };
const run = `${process.pid}-${Date.now()}`;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-sem-'));
const atExit = [];
let redis;

const pause = (ms) => new Promise((r) => setTimeout(r, ms));
// Polls `probe` (sync or async) every 20 ms until it returns something truthy, at most `ms`.
async function eventually(probe, ms, what) {
  for (const stop = Date.now() + ms; ;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > stop) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await pause(20);
  }
}
// `jobq ARGS...` to completion: its stdout, trimmed.
const jobq = (...args) => execFileSync(jobqPath, args, { env, encoding: 'utf8', timeout: 60000 }).trim();
// `jobq work QUEUE ARGS...` in the background; `done` resolves to its exit code.
function jobqWork(queue, ...args) {
  const child = spawn(jobqPath, ['work', queue, ...args], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const done = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  atExit.push(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  return { child, done };
}
// A queue of this run, closed at the end.
function nodeQueue(suffix) {
  const q = new Queue(`sem-${suffix}-${run}`, { connection });
  atExit.push(() => q.close());
  return q;
}
const b64 = (s) => Buffer.from(s).toString('base64');
// A named pipe: a job's command blocks reading it until the test writes a line.
function gate(name) {
  const p = path.join(scratch, name);
  execFileSync('mkfifo', [p]);
  return { path: p, open: () => fs.writeFileSync(p, 'go\n') };
}

const cases = [];
const test = (name, fn) => cases.push({ name, fn });

// --- 1. worker identity --------------------------------------------------------------------
test('a busy named jobq worker is listed by getWorkers and writes pb', async () => {
  const queue = nodeQueue('busy');
  const g = gate('busy');
  const job = await queue.add('slow', { n: 1 });
  const w = jobqWork(queue.name, '--name', 'busy-w', '--max-jobs', '1', '--', 'sh', '-c', `read x < ${g.path}`);
  await eventually(async () => (await queue.getJobState(job.id)) === 'active', 10000, 'the job active');
  const workers = await queue.getWorkers();
  assert.deepEqual(workers.map((c) => c.rawname), [`bull:${b64(queue.name)}:w:busy-w`]);
  assert.equal((await queue.getJob(job.id)).processedBy, 'busy-w');
  g.open();
  assert.equal(await w.done, 0);
  const after = await queue.getJob(job.id);
  assert.equal(await after.getState(), 'completed');
  assert.equal(after.processedBy, 'busy-w');
  await eventually(async () => (await queue.getWorkers()).length === 0, 5000, 'the worker gone');
});
test('an idle jobq worker is listed once under its default name host:pid', async () => {
  const queue = nodeQueue('idle');
  const w = jobqWork(queue.name, '--', 'true');
  const workers = await eventually(async () => {
    const l = await queue.getWorkers();
    return l.length > 0 && l;
  }, 10000, 'the worker listed');
  await pause(300); // waits come and go: still once
  assert.deepEqual((await queue.getWorkers()).map((c) => c.rawname), workers.map((c) => c.rawname));
  assert.equal(workers.length, 1);
  assert.equal(workers[0].rawname, `bull:${b64(queue.name)}:w:${os.hostname()}:${w.child.pid}`);
  w.child.kill('SIGTERM');
  assert.equal(await w.done, 0);
});
test('a Node worker\'s pb is read back by jobq get', async () => {
  const queue = nodeQueue('nodepb');
  const job = await queue.add('x', {});
  const worker = new Worker(queue.name, async () => 'ok', { connection, name: 'node-w' });
  atExit.push(() => worker.close());
  await eventually(async () => (await queue.getJobState(job.id)) === 'completed', 10000, 'the job completed');
  assert.equal(JSON.parse(jobq('get', queue.name, job.id, '--json')).processedBy, 'node-w');
});

// --- 3. deduplication keepLastIfActive -------------------------------------------------------
// The owner runs in jobq (gated); Node adds twice more with the same dedup id meanwhile; when
// the owner finishes (exit 0: completed, exit 64: failed for good) the latest add becomes the
// next job, and no stash is left behind.
for (const [how, exit] of [['completes', 0], ['fails for good', 64]]) {
  test(`keepLastIfActive: jobq ${how} the owner, the latest stashed add becomes the next job`, async () => {
    const queue = nodeQueue(`kl${exit}`);
    const g = gate(`kl${exit}`);
    const de = { deduplication: { id: 'k', keepLastIfActive: true } };
    const owner = await queue.add('own', { v: 0 }, de);
    const w = jobqWork(queue.name, '--max-jobs', '2', '--', 'sh', '-c',
      `read -r d; case "$d" in *'"v":0'*) read x < ${g.path}; exit ${exit};; esac; echo "$d"`);
    await eventually(async () => (await queue.getJobState(owner.id)) === 'active', 10000, 'the owner active');
    const a = await queue.add('own', { v: 1 }, de);
    const b = await queue.add('own', { v: 2 }, de);
    assert.equal(a.id, owner.id);
    assert.equal(b.id, owner.id);
    assert.equal(await redis.exists(`bull:${queue.name}:dn:k`), 1);
    g.open();
    assert.equal(await w.done, exit ? 1 : 0);
    assert.equal(await queue.getJobState(owner.id), exit ? 'failed' : 'completed');
    const next = (await queue.getJobs(['completed'])).filter((j) => j.id !== owner.id);
    assert.equal(next.length, 1);
    assert.deepEqual(next[0].data, { v: 2 });
    assert.deepEqual(next[0].returnvalue, { v: 2 });
    assert.equal(await redis.exists(`bull:${queue.name}:dn:k`), 0);
    assert.equal(await redis.exists(`bull:${queue.name}:de:k`), 0);
  });
}

// Later owners: the job made from the stash owns the dedup id in turn (no TTL), so an add
// while it runs is stashed again and becomes the third job when it finishes.
test('keepLastIfActive: the job made from the stash is the next owner', async () => {
  const queue = nodeQueue('klnext');
  const g1 = gate('klnext1');
  const g2 = gate('klnext2');
  const de = { deduplication: { id: 'k', keepLastIfActive: true } };
  const owner = await queue.add('own', { v: 0 }, de);
  const w = jobqWork(queue.name, '--max-jobs', '3', '--', 'sh', '-c',
    `read -r d; case "$d" in *'"v":0'*) read x < ${g1.path};; *'"v":1'*) read x < ${g2.path};; esac; echo "$d"`);
  await eventually(async () => (await queue.getJobState(owner.id)) === 'active', 10000, 'the owner active');
  assert.equal((await queue.add('own', { v: 1 }, de)).id, owner.id);
  g1.open();
  const second = await eventually(async () => {
    const l = await queue.getJobs(['active']);
    return l.length === 1 && l[0].id !== owner.id && l[0];
  }, 10000, 'the stashed job active');
  assert.deepEqual(second.data, { v: 1 });
  assert.equal(await redis.get(`bull:${queue.name}:de:k`), second.id);
  assert.equal((await queue.add('own', { v: 2 }, de)).id, second.id);
  g2.open();
  assert.equal(await w.done, 0);
  const done = await queue.getJobs(['completed']);
  assert.deepEqual(done.map((j) => j.data.v).sort(), [0, 1, 2]);
  assert.equal(await redis.exists(`bull:${queue.name}:dn:k`), 0);
  assert.equal(await redis.exists(`bull:${queue.name}:de:k`), 0);
});

// The other way: jobq adds with keepLastIfActive (`jobq add --dedup --dedup-keep-last`), a
// Node worker runs the owner, and the add jobq stashed meanwhile is the next job Node runs.
test('keepLastIfActive: jobq adds, a Node worker finishes the owner and runs the stashed add', async () => {
  const queue = nodeQueue('klnode');
  const add = (v) => jobq('add', queue.name, 'own', JSON.stringify({ v }), '--dedup', 'k', '--dedup-keep-last');
  const owner = add(0);
  let release;
  const gateP = new Promise((r) => { release = r; });
  const seen = [];
  const worker = new Worker(queue.name, async (job) => {
    seen.push(job.data.v);
    if (job.data.v === 0) await gateP;
    return job.data.v;
  }, { connection });
  atExit.push(() => worker.close());
  await eventually(async () => (await queue.getJobState(owner)) === 'active', 10000, 'the owner active');
  assert.equal(add(1), owner);
  assert.equal(add(2), owner);
  release();
  await eventually(async () => (await queue.getJobs(['completed'])).length === 2, 10000, 'two jobs completed');
  assert.deepEqual(seen, [0, 2]);
  assert.equal(await redis.exists(`bull:${queue.name}:dn:k`), 0);
});

// --- 4. worker keep policies ----------------------------------------------------------------
// `jobq work --remove-on-complete[=N]` / `--remove-on-fail[=N]` apply to the jobs Node added
// without a policy of their own (as a Node worker's removeOnComplete / removeOnFail would); a
// job's own policy wins. And the other way: a Node worker's policy on jobs jobq added.
test('jobq work keep policies on Node\'s jobs; a job\'s own wins', async () => {
  const queue = nodeQueue('keep');
  const p = [];
  for (let i = 0; i < 3; i++) p.push(await queue.add('p', { i }));
  const own = await queue.add('own', {}, { removeOnComplete: false });
  const w = jobqWork(queue.name, '--remove-on-complete=1', '--max-jobs', '4', '--', 'echo', '1');
  assert.equal(await w.done, 0);
  // p2 completed last of the three and the newest is kept; own keeps itself
  assert.deepEqual((await queue.getJobs(['completed'])).map((j) => j.id).sort(),
    [p[2].id, own.id].sort());
  const f1 = await queue.add('f', {});
  const f2 = await queue.add('f', {}, { removeOnFail: false });
  const wf = jobqWork(queue.name, '--remove-on-fail', '--max-jobs', '2', '--', 'sh', '-c', 'exit 64');
  assert.equal(await wf.done, 1);
  assert.equal(await queue.getJob(f1.id), undefined);
  assert.equal(await queue.getJobState(f2.id), 'failed');
});
test('a Node worker\'s keep policy on jobq\'s jobs; a job\'s own wins', async () => {
  const queue = nodeQueue('nodekeep');
  const plain = jobq('add', queue.name, 'p', '{}');
  const own = jobq('add', queue.name, 'own', '{}', '--remove-on-complete=5');
  const worker = new Worker(queue.name, async () => 'ok', { connection, removeOnComplete: { count: 0 } });
  atExit.push(() => worker.close());
  await eventually(async () => (await queue.getJobState(own)) === 'completed', 10000, 'own completed');
  assert.equal(await queue.getJob(plain), undefined);
});

(async () => {
  let failed = 0;
  redis = new IORedis({ path: sock });
  atExit.push(() => redis.quit());
  for (const c of cases) {
    try {
      let timer;
      await Promise.race([c.fn(), new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new Error('case timed out after 60 s')), 60000);
      })]).finally(() => clearTimeout(timer));
      console.log(`ok ${c.name}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${c.name}\n${e.stack}`);
    }
  }
  for (const f of atExit.reverse()) {
    try { await f(); } catch (e) { /* closing */ }
  }
  fs.rmSync(scratch, { recursive: true, force: true });
  console.log(failed ? `${failed} case(s) failed` : 'all cases passed');
  process.exit(failed ? 1 : 0);
})();
