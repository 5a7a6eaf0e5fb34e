// BullMQ (Node) side of tools/bench/compare-redis.sh: the workloads of `jobq bench` on the
// same Redis server, with the bullmq pinned in tests/interop (6.7.0; JOBQ_BULLMQ_MODULES
// points elsewhere, e.g. tests/interop/v5/node_modules).
//   node bullmq_bench.js --socket PATH [--jobs N] [--concurrency C] [--size BYTES]
//                        [--inflight K]
// Prints one JSON object:
//   add_per_s             add() one at a time, each awaited
//   add_concurrent_per_s  add() with K calls in flight (default 100; ioredis pipelines them)
//   add_bulk_per_s        addBulk() in batches of 1000 (as jobq's bulk add)
//   process_per_s         2*N waiting jobs run by one Worker (concurrency C, empty processor,
//                         removeOnComplete), counted at processor entry like jobq bench
'use strict';
const path = require('path');
const mods = process.env.JOBQ_BULLMQ_MODULES ||
  path.join(__dirname, '..', '..', 'tests', 'interop', 'node_modules');
const { Queue, Worker } = require(path.join(mods, 'bullmq'));
const version = require(path.join(mods, 'bullmq', 'package.json')).version;

const args = { jobs: 5000, concurrency: 4, size: 100, socket: null, inflight: 100 };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in args)) throw new Error(`unknown option ${process.argv[i]}`);
  args[k] = k === 'socket' ? process.argv[i + 1] : Number(process.argv[i + 1]);
}
if (!args.socket) throw new Error('--socket PATH is required');
const connection = { path: args.socket, maxRetriesPerRequest: null };
const payload = 'x'.repeat(Math.max(0, args.size - 2)); // JSON text of `size` bytes
const now = () => Number(process.hrtime.bigint()) / 1e9;

(async () => {
  const qname = `bullmq-bench-${process.pid}`;
  const queue = new Queue(qname, { connection });
  await queue.waitUntilReady();
  const N = args.jobs;

  let t0 = now();
  for (let i = 0; i < N; i++) await queue.add('bench', payload);
  const addS = now() - t0;

  t0 = now();
  const inflight = Math.max(1, args.inflight);
  for (let done = 0; done < N;) {
    const n = Math.min(inflight, N - done);
    await Promise.all(Array.from({ length: n }, () => queue.add('bench', payload)));
    done += n;
  }
  const addConcS = now() - t0;

  t0 = now();
  for (let done = 0; done < N;) {
    const n = Math.min(1000, N - done);
    await queue.addBulk(Array.from({ length: n }, () => ({ name: 'bench', data: payload })));
    done += n;
  }
  const bulkS = now() - t0;

  // process 2N of the 3N queued jobs, as jobq bench processes its 2N
  await queue.drain();
  const total = 2 * N;
  for (let done = 0; done < total;) {
    const n = Math.min(1000, total - done);
    await queue.addBulk(Array.from({ length: n }, () => ({ name: 'bench', data: payload })));
    done += n;
  }
  let processed = 0;
  let finished;
  const allDone = new Promise((r) => { finished = r; });
  t0 = now();
  const worker = new Worker(qname, async () => {
    if (++processed === total) finished(now());
  }, { connection, concurrency: args.concurrency, removeOnComplete: { count: 0 } });
  const t1 = await allDone;
  const procS = t1 - t0;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  console.log(JSON.stringify({
    bullmq: version, jobs: N, concurrency: args.concurrency, size: args.size, inflight,
    add_per_s: Math.round(N / addS), add_concurrent_per_s: Math.round(N / addConcS),
    add_bulk_per_s: Math.round(N / bulkS), process_per_s: Math.round(total / procS),
  }));
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
