// BullMQ (Node) side of tools/bench/run.sh: the workloads of `jobq bench` on the same Redis
// server, with the bullmq pinned in tests/interop (6.7.0; JOBQ_BULLMQ_MODULES points
// elsewhere, e.g. tests/interop/v5/node_modules).
//   node bullmq_bench.js --socket PATH [--jobs N] [--concurrency C] [--size BYTES]
//                        [--inflight K] [--samples S] [--adds 0|1]
// Prints one JSON object:
//   add_per_s             add() one at a time, each awaited
//   add_concurrent_per_s  add() with K calls in flight all along (default 100; ioredis
//                         pipelines them)
//   add_bulk_per_s        addBulk() in batches of 1000 (as jobq's bulk add)
//   process_per_s         2*N waiting jobs run by one Worker (concurrency C, empty processor,
//                         removeOnComplete), counted at processor entry like jobq bench
//   pickup_p50_us,        pickup latency of the idle Worker of the process phase, S samples
//   pickup_p99_us         (default 200; 0 skips it), as `jobq bench` measures it: wait 2 ms,
//                         then the time from just before add() to the processor's entry;
//                         the next sample starts once that job completed. Percentiles are
//                         the sorted sample at index round(p * (S - 1)), as jobq bench's.
// --adds 0 skips the three add phases (their fields are then absent).
'use strict';
const path = require('path');
const mods = process.env.JOBQ_BULLMQ_MODULES ||
  path.join(__dirname, '..', '..', 'tests', 'interop', 'node_modules');
const { Queue, Worker } = require(path.join(mods, 'bullmq'));
const version = require(path.join(mods, 'bullmq', 'package.json')).version;

const args = {
  jobs: 5000, concurrency: 4, size: 100, socket: null, inflight: 100, samples: 200, adds: 1,
};
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in args) || i + 1 >= process.argv.length) {
    throw new Error(`unknown option or missing value: ${process.argv[i]}`);
  }
  args[k] = k === 'socket' ? process.argv[i + 1] : Number(process.argv[i + 1]);
}
if (!args.socket) throw new Error('--socket PATH is required');
const connection = { path: args.socket, maxRetriesPerRequest: null };
const payload = 'x'.repeat(Math.max(0, args.size - 2)); // JSON text of `size` bytes
const now = () => Number(process.hrtime.bigint()) / 1e9;
const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  const i = Math.floor(p * (sorted.length - 1) + 0.5);
  return sorted[Math.min(i, sorted.length - 1)];
}

(async () => {
  const qname = `bullmq-bench-${process.pid}`;
  const queue = new Queue(qname, { connection });
  await queue.waitUntilReady();
  const N = args.jobs;
  const out = { bullmq: version, jobs: N, concurrency: args.concurrency, size: args.size };

  if (args.adds) {
    let t0 = now();
    for (let i = 0; i < N; i++) await queue.add('bench', payload);
    out.add_per_s = Math.round(N / (now() - t0));

    // K lanes of awaited adds: K adds in flight all along (as jobq bench --inflight K keeps
    // its window full), not K at a time waiting for the slowest
    const inflight = Math.max(1, args.inflight);
    t0 = now();
    let started = 0;
    const lane = async () => {
      while (started < N) {
        started++;
        await queue.add('bench', payload);
      }
    };
    await Promise.all(Array.from({ length: Math.min(inflight, N) }, lane));
    out.inflight = inflight;
    out.add_concurrent_per_s = Math.round(N / (now() - t0));

    t0 = now();
    for (let done = 0; done < N;) {
      const n = Math.min(1000, N - done);
      await queue.addBulk(Array.from({ length: n }, () => ({ name: 'bench', data: payload })));
      done += n;
    }
    out.add_bulk_per_s = Math.round(N / (now() - t0));
    await queue.drain();
  }

  // process 2N waiting jobs, as jobq bench processes its 2N
  const total = 2 * N;
  for (let done = 0; done < total;) {
    const n = Math.min(1000, total - done);
    await queue.addBulk(Array.from({ length: n }, () => ({ name: 'bench', data: payload })));
    done += n;
  }
  let processed = 0;
  let finished;
  const allDone = new Promise((r) => { finished = r; });
  let onPickup = null; // set while a pickup sample waits for its job
  let completed = 0;
  let onCompleted = null; // [count, resolve]: resolved once `completed` reaches count
  const t0 = now();
  const worker = new Worker(qname, async () => {
    if (onPickup) {
      const entered = nowUs();
      const f = onPickup;
      onPickup = null;
      f(entered);
      return;
    }
    if (++processed === total) finished(now());
  }, { connection, concurrency: args.concurrency, removeOnComplete: { count: 0 } });
  worker.on('completed', () => {
    completed++;
    if (onCompleted && completed >= onCompleted[0]) {
      onCompleted[1]();
      onCompleted = null;
    }
  });
  worker.on('error', (e) => { console.error(e); process.exit(1); });
  const waitCompleted = (n) => (completed >= n ? Promise.resolve()
    : new Promise((r) => { onCompleted = [n, r]; }));
  const t1 = await allDone;
  out.process_per_s = Math.round(total / (t1 - t0));

  // pickup latency of the idle worker
  if (args.samples > 0) {
    await waitCompleted(total);
    const lat = [];
    for (let i = 0; i < args.samples; i++) {
      await sleep(2); // let the worker go idle in its wait, as jobq bench does
      const entered = new Promise((r) => { onPickup = r; });
      const start = nowUs();
      await queue.add('pickup', payload);
      lat.push((await entered) - start);
      await waitCompleted(total + i + 1);
    }
    lat.sort((a, b) => a - b);
    out.pickup_p50_us = percentile(lat, 0.50);
    out.pickup_p99_us = percentile(lat, 0.99);
    out.pickup_samples = args.samples;
  }

  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  console.log(JSON.stringify(out));
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
