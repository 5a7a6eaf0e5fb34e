// Bull Board and Node's getJobSchedulers() show job schedulers created by the `jobq` command
// as they show Node's own (issue 15). On queue `reports`, one scheduler of each kind from each
// side with the same settings: every hour from a start date, and a cron pattern in a zone with
// start and end dates and a limit; the same template (name, data, attempts, backoff, keep
// policy, priority). Then:
//   - getJobSchedulers() returns the two sides' alike (all but the scheduler id);
//   - Bull Board's API lists the four pending iterations in delayed, and each jobq iteration
//     reads as its Node twin (list and job endpoints), but for ids and creation times;
//   - the rendered delayed page in headless Chromium shows each jobq iteration's card with the
//     same lines as its Node twin's (its Options tab open), digits and ids aside (OUT.png: a
//     screenshot).
//   node schedulers.js JOBQ SOCKET [OUT.png]       exits 0 when all held, 1 otherwise
'use strict';
const assert = require('assert/strict');
const { execFileSync } = require('child_process');
const { Queue } = require('bullmq');
const launch = require('./browser.js');
const serve = require('./server.js');

const [jobq, socket, out] = process.argv.slice(2);
const qname = 'reports';
const hour = 3600e3;
const start = Math.ceil(Date.now() / hour) * hour + 24 * hour;
const end = start + 30 * 24 * hour;
const data = { team: 'ops', n: [1, 2] };
const opts = { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: 10, priority: 4 };
const cliOpts = ['--attempts', '3', '--backoff', 'exponential:1000', '--remove-on-complete=10', '--priority', '4'];
const kinds = {
  every: { repeat: { every: hour, startDate: start, limit: 24 },
    cli: ['--every', String(hour), '--start', String(start), '--limit', '24'] },
  cron: { repeat: { pattern: '0 30 9 * * 1-5', tz: 'Europe/Paris', startDate: start, endDate: end, limit: 10 },
    cli: ['--cron', '0 30 9 * * 1-5', '--tz', 'Europe/Paris', '--start', String(start), '--end', String(end),
      '--limit', '10'] },
};

let failures = 0;
let checks = 0;
async function check(name, fn) {
  checks++;
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
  }
}

// `v` as JSON with scheduler `sid` and its iteration ids made generic, without `drop`'s keys
// (at any depth): what differs between two schedulers created a moment apart.
function norm(v, sid, drop) {
  const text = JSON.stringify(v, (k, x) => (drop.includes(k) ? undefined : x));
  return JSON.parse(text.split(sid).join('SID'));
}
const times = ['timestamp', 'delay'];

(async () => {
  const connection = { path: socket };
  const queue = new Queue(qname, { connection });
  for (const [k, s] of Object.entries(kinds)) {
    await queue.upsertJobScheduler(`node-${k}`, s.repeat, { name: 'digest', data, opts });
    execFileSync(jobq, ['schedule', qname, `jobq-${k}`, ...s.cli, 'digest', JSON.stringify(data), ...cliOpts],
      { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const scheds = Object.fromEntries((await queue.getJobSchedulers()).map((s) => [s.key, s]));

  await check("getJobSchedulers() returns jobq's schedulers as Node's", async () => {
    assert.deepEqual(Object.keys(scheds).sort(), ['jobq-cron', 'jobq-every', 'node-cron', 'node-every']);
    for (const k of Object.keys(kinds)) {
      const n = scheds[`node-${k}`];
      const j = scheds[`jobq-${k}`];
      assert.deepEqual(norm(j, `jobq-${k}`, []), norm(n, `node-${k}`, []), k);
    }
    assert.equal(scheds['node-every'].next, start);
  });

  const board = await serve(socket, 0, [qname]);
  const base = `http://127.0.0.1:${board.port}`;
  const getJson = async (path) => {
    const res = await fetch(base + path);
    assert.ok(res.ok, `${path}: HTTP ${res.status}`);
    return res.json();
  };
  const iteration = (sid) => `repeat:${sid}:${scheds[sid].next}`;
  try {
    await check("Bull Board's API lists jobq's iterations as Node's", async () => {
      const { queues } = await getJson(`/api/queues?activeQueue=${qname}&status=delayed&page=1&jobsPerPage=50`);
      const q = queues.find((x) => x.name === qname);
      assert.ok(q, `no queue ${qname} in ${JSON.stringify(queues.map((x) => x.name))}`);
      assert.equal(q.counts.delayed, 4);
      const byId = Object.fromEntries(q.jobs.map((j) => [j.id, j]));
      for (const k of Object.keys(kinds)) {
        const n = byId[iteration(`node-${k}`)];
        const j = byId[iteration(`jobq-${k}`)];
        assert.ok(n && j, `${k}: listed ${Object.keys(byId)}`);
        assert.deepEqual(norm(j, `jobq-${k}`, times), norm(n, `node-${k}`, times), k);
        assert.equal(j.opts.repeat.limit, kinds[k].repeat.limit, `${k}: ${JSON.stringify(j.opts)}`);
        const one = async (sid) => (await getJson(`/api/queues/${qname}/${encodeURIComponent(iteration(sid))}`)).job;
        assert.deepEqual(norm(await one(`jobq-${k}`), `jobq-${k}`, times),
          norm(await one(`node-${k}`), `node-${k}`, times), `${k}: job endpoint`);
      }
    });

    await check("Bull Board's page shows jobq's iterations as Node's", async () => {
      const browser = await launch();
      try {
        const page = await browser.newPage();
        await page.setViewport({ width: 1280, height: 2000 });
        await page.goto(`${base}/queue/${qname}?status=delayed`, { waitUntil: 'networkidle0', timeout: 30000 });
        const ids = Object.keys(scheds).map(iteration);
        await page.waitForFunction((all) => all.every((id) => document.body.innerText.includes(id)),
          { timeout: 20000 }, ids).catch(() => {});
        // every card's Options tab (the iteration's options, its repeat settings among them)
        for (const tab of await page.$$("xpath/.//button[normalize-space(.)='Options'] | .//li[normalize-space(.)='Options']"))
          await tab.click();
        await page.waitForFunction((n) => (document.body.innerText.match(/"repeat"/g) || []).length >= n,
          { timeout: 10000 }, ids.length).catch(() => {});
        // each iteration's card: the largest element that names it and no other iteration
        const cards = await page.evaluate((all) => {
          const res = {};
          for (const id of all) {
            let best = null;
            for (const el of document.querySelectorAll('body *')) {
              const t = el.innerText || '';
              if (t.includes(id) && all.every((o) => o === id || !t.includes(o))) {
                if (!best || t.length > best.length) best = t;
              }
            }
            res[id] = best;
          }
          return res;
        }, ids);
        if (out) await page.screenshot({ path: out, fullPage: true });
        for (const k of Object.keys(kinds)) {
          const text = (sid) => {
            const t = cards[iteration(sid)];
            assert.ok(t, `no card for ${iteration(sid)}`);
            // its lines in order (the options JSON in the order Redis's Lua gave its keys:
            // not a property of either side; the API check compares the structure)
            return t.split(sid).join('SID').replace(/[0-9]+/g, '#')
              .split('\n').map((l) => l.trim().replace(/,$/, '')).sort().join('\n');
          };
          const j = text(`jobq-${k}`);
          for (const want of ['digest', `repeat # / #`, '"repeat"', kinds[k].repeat.pattern ? '"pattern"' : '"every"'])
            assert.ok(j.includes(want), `${k}: the card lacks ${want}: ${j}`);
          assert.equal(j, text(`node-${k}`), k);
        }
      } finally {
        await browser.close();
      }
    });
  } finally {
    await board.close();
    await queue.close();
  }
  console.log(`bullboard schedulers: ${checks} checks, ${failures} failures`);
  process.exit(failures ? 1 : 0);
})().catch((e) => {
  console.log(`FAIL ${e.stack || e}`);
  process.exit(1);
});
