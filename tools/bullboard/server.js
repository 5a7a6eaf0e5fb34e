// Bull Board (Express) over the given queues of a Redis server on a unix socket.
//   node server.js SOCKET PORT QUEUE...   prints "listening PORT" once it listens
'use strict';
const express = require('express');
const { Queue } = require('bullmq');
const { createBullBoard } = require('@bull-board/api');
const { BullMQAdapter } = require('@bull-board/api/bullMQAdapter');
const { ExpressAdapter } = require('@bull-board/express');

const [socket, port, ...names] = process.argv.slice(2);
if (!socket || !port || names.length === 0) {
  console.error('usage: node server.js SOCKET PORT QUEUE...');
  process.exit(2);
}
const connection = { path: socket };
const queues = names.map((n) => new Queue(n, { connection }));
const serverAdapter = new ExpressAdapter();
serverAdapter.setBasePath('/');
createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q)), serverAdapter });
const app = express();
app.use('/', serverAdapter.getRouter());
const server = app.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
const stop = async () => {
  server.close();
  await Promise.all(queues.map((q) => q.close()));
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
