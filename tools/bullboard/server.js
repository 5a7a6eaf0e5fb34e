// Bull Board (Express) over the given queues of a Redis server on a unix socket.
//   node server.js SOCKET PORT QUEUE...   prints "listening PORT" once it listens
// or, from another script: require('./server.js')(socket, port, names) resolves to
// { port, close }.
'use strict';
const express = require('express');
const { Queue } = require('bullmq');
const { createBullBoard } = require('@bull-board/api');
const { BullMQAdapter } = require('@bull-board/api/bullMQAdapter');
const { ExpressAdapter } = require('@bull-board/express');

function serve(socket, port, names) {
  const connection = { path: socket };
  const queues = names.map((n) => new Queue(n, { connection }));
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath('/');
  createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q)), serverAdapter });
  const app = express();
  app.use('/', serverAdapter.getRouter());
  return new Promise((resolve) => {
    const server = app.listen(Number(port), '127.0.0.1', () => {
      resolve({
        port: server.address().port,
        close: async () => {
          server.close();
          await Promise.all(queues.map((q) => q.close()));
        },
      });
    });
  });
}
module.exports = serve;

if (require.main === module) {
  const [socket, port, ...names] = process.argv.slice(2);
  if (!socket || !port || names.length === 0) {
    console.error('usage: node server.js SOCKET PORT QUEUE...');
    process.exit(2);
  }
  serve(socket, port, names).then((board) => {
    console.log(`listening ${board.port}`);
    const stop = async () => {
      await board.close();
      process.exit(0);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
