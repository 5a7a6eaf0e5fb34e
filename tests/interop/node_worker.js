// A Node BullMQ worker in its own process, to be killed with SIGKILL by interop.js.
// usage: node node_worker.js <redis unix socket> <queue> <lockDuration ms>
// Prints "start <id>" when a job starts; its processor never returns.
'use strict';
const path = require('path');
const mods = process.env.JOBQ_INTEROP_MODULES || path.join(__dirname, 'node_modules');
const { Worker } = require(path.join(mods, 'bullmq'));

const [, , sock, qname, lock] = process.argv;
const worker = new Worker(qname, (job) => {
  process.stdout.write(`start ${job.id}\n`);
  return new Promise(() => {}); // hangs until killed
}, { connection: { path: sock, maxRetriesPerRequest: null }, lockDuration: Number(lock),
  stalledInterval: 300 });
worker.on('error', (e) => process.stderr.write(`${e.stack}\n`));
