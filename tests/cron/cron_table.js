#!/usr/bin/env node
// Compares jobq's cron evaluation (the cron_eval helper) with the npm package cron-parser that
// BullMQ 6.7.0 uses, pinned under tests/interop/node_modules: for every pattern x zone x start
// time of a table, the next run time as BullMQ computes it (a fresh parse with currentDate =
// the start, then next(); an error is "none"), and whether the pattern parses at all.
//
//   node cron_table.js HELPER [--big]      exit 0: all agree; 1: mismatches; 77: no cron-parser
'use strict';
const path = require('path');
const { spawnSync } = require('child_process');

const helper = process.argv[2];
const big = process.argv.includes('--big');
let CronExpressionParser;
try {
  ({ CronExpressionParser } = require(path.join(__dirname, '../interop/node_modules/cron-parser')));
} catch (e) {
  console.log('cron_table: cron-parser not installed (npm ci in tests/interop): skipped');
  process.exit(77);
}

// Patterns: the everyday ones, every syntax form, and the DST-sensitive hours.
const patterns = [
  '* * * * *', '* * * * * *', '*/15 * * * *', '0 * * * *', '30 * * * *', '0 0 * * *',
  '30 2 * * *', '0 2 * * *', '15 2 * * *', '45 1 * * *', '0 3 * * *', '30 1 * * *',
  '0 1,2,3 * * *', '*/10 2 * * *', '0 */2 * * *', '0 0-23/3 * * *', '*/20 1-3 * * *',
  '0 0 1 * *', '0 0 L * *', '0 12 15 * *', '0 9 * * 1-5', '0 9 * * MON-FRI', '0 0 * * 0',
  '0 0 * * 7', '0 0 * * 5L', '0 0 * * 1#1', '0 0 * * FRI#3', '0 0 1,15 * 1', '0 0 13 * 5',
  '0 0 29 2 *', '0 0 30 2 *', '0 0 31 * *', '0 0 * JAN,JUL *', '0 0 1 jan *', '5/15 * * * *',
  '0 30 2 * * *', '10 30 2 * * *', '*/30 * 2 * * *', '0 0 0 * * *', '59 59 23 31 12 *',
  '@yearly', '@annually', '@monthly', '@weekly', '@daily', '@hourly', '@minutely',
  '@secondly', '@weekdays', '@weekends', '? * * * ?', '0 0 ? * MON', '0 0 */1 * 1',
  '0 0 * * 1L', '0 0 L * 5', '0 0 15L * *', '0 0 * * 8L', '0 0 * * *#2', '', '5',
  '0 0 * * 0,6', '1-2-3 * * * *', '0 0 1 * * ', ' 0 0 1 * *', '0 9-17 * * *',
  '0 22-23,0-2 * * *', '0 0,12 1 */2 *', '0 0 * * 1-7', '0 0 * * 0-7/2', '*/7 * * * * *',
  '0 0 1-7 * 1', '0 0 * * 2#5', '0 4 8-14 * *', '0 0 29 2 1',
  // refused by cron-parser (both must refuse)
  '60 * * * *', '* 24 * * *', '* * 0 * *', '* * 32 * *', '* * * 13 *', '* * * * 8',
  '*/0 * * * *', '1-60 * * * *', '5-1 * * * *', '1,1 * * * *', '0 1-5,3 * * *',
  '0 0 * * 0,7', '1 2 3 4 5 6 7', '0 0 1W * *', '0 0 * * L', '0 0 LW * *', 'abc * * * *',
  '0 0 * FOO *', '@YEARLY', '@every 5m', '   ', '1, * * * *', '1/2/3 * * * *', '/5 * * * *',
  '5/ * * * *', '0 0 * * 5#6', '0 0 * * 5#0', '0 0 * * 1-5#2', '0 0 L/2 * *', '0 0 123L * *',
  '0 0 * * L5', '-1 * * * *', '+1 * * * *', '0x1 * * * *', '1.5 * * * *', '0 0 * * 5#1#2',
];
const bigPatterns = [
  '*/5 * * * *', '0 */3 * * *', '0 1 * * *', '0 3 * * *', '30 3 * * *', '0 0,1,2 * * *',
  '15,45 2 * * *', '0 2 * * 0', '0 30 1 * * *', '0 0 2 * * *', '30 30 2 * * *',
  '0 0 2-3 * * *', '* 2 * * *', '0 0 0 L * *', '0 12 * * 1#5', '0 0 * 2 1#5', '0 0 1,L * *',
  '0 0 * * 3L', '0 0 1 */3 *', '0 0 1 1 *', '0 10 * * 6,0', '1 2 3 4 *', '0 0 * * *#5',
  '*/13 */7 * * *', '0 23 * * *', '59 23 * * *', '0 0 28-31 * *', '0 9 1-7 * MON',
  '0 0 * * 1,3L', '*/45 * * * *', '0 0 31 4 *', '0 5 * * JUL', '0 0 8L * *', '0 0 * * 0#1',
];

const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe',
  'Asia/Kolkata', 'Australia/Sydney', 'Pacific/Chatham', 'UTC+5', 'UTC-03:30'];
const bigZones = ['America/Sao_Paulo', 'Europe/London', 'Asia/Tokyo', 'America/Santiago',
  'America/Los_Angeles', 'Europe/Moscow', 'Africa/Casablanca',
  'America/Havana', 'Asia/Tehran', 'Pacific/Apia', 'Antarctica/Troll', 'Europe/Dublin',
  'America/St_Johns', 'Asia/Gaza'];

// Start times: plain days, and around each zone's DST transitions of 2024-2026 (found from
// the zone's offsets), at several minutes and seconds of the hours around them.
const formats = {};
function offsetMin(zone, ms) {
  const d = new Date(ms);
  if (zone === 'UTC') return 0;
  if (/^UTC[+-]/.test(zone)) return null;
  if (!formats[zone]) {
    formats[zone] = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23',
      year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric',
      second: 'numeric' });
  }
  const parts = formats[zone].formatToParts(d);
  const g = (t) => +parts.find((p) => p.type === t).value;
  const asUTC = Date.UTC(g('year'), g('month') - 1, g('day'), g('hour'), g('minute'), g('second'));
  return Math.round((asUTC - Math.floor(ms / 1000) * 1000) / 60000);
}
function transitions(zone, fromYear, toYear) {
  const out = [];
  const step = 3600 * 1000 * 6;
  let t = Date.UTC(fromYear, 0, 1);
  const end = Date.UTC(toYear + 1, 0, 1);
  let prev = offsetMin(zone, t);
  if (prev === null) return out;
  for (t += step; t < end; t += step) {
    const o = offsetMin(zone, t);
    if (o !== prev) {
      let lo = t - step, hi = t; // bisect to the minute
      while (hi - lo > 60000) {
        const mid = lo + Math.floor((hi - lo) / 120000) * 60000;
        if (offsetMin(zone, mid) === prev) lo = mid; else hi = mid;
      }
      out.push(hi);
      prev = o;
    }
  }
  return out;
}

function startTimes(zone) {
  const base = [Date.UTC(2025, 5, 15, 12, 34, 56, 789), Date.UTC(2024, 1, 29, 0, 0, 0, 1)];
  if (big) base.push(Date.UTC(2024, 0, 1), Date.UTC(2026, 1, 28, 23, 59, 59));
  const out = base.slice();
  const tr = transitions(zone, 2024, big ? 2026 : 2024);
  const offsets = big
    ? [-26, -25, -24, -12, -3, -2, -1.5, -1, -0.75, -0.5, -0.25, -1 / 60, 0, 0.25, 0.5, 1, 2, 23]
    : [-1, -0.5, 0, 0.5];
  for (const t of tr) for (const h of offsets) out.push(t + Math.round(h * 3600000));
  if (big) out.push(t0ms(tr) + 1234);
  return out;
}
function t0ms(tr) { return tr.length ? tr[0] - 7 * 86400000 : Date.UTC(2025, 9, 1); }

function nodeNext(pattern, zone, ms) {
  let interval;
  try {
    interval = CronExpressionParser.parse(pattern, { currentDate: new Date(ms), tz: zone });
  } catch (e) {
    return 'invalid';
  }
  try {
    return 'next ' + interval.next().getTime();
  } catch (e) {
    return 'none';
  }
}

// Random patterns from the syntax's pieces (a fixed seed: the same table each run), for
// whether both sides accept the same, and the same times in two zones.
function randomPatterns(count) {
  let seed = 20261205;
  const rnd = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return Math.floor((seed / 2147483648) * n);
  };
  const pick = (a) => a[rnd(a.length)];
  // Mostly what the field allows (values a little past its range now and then), with a few
  // forms that only some fields take.
  const piece = (min, max, kind) => {
    const n = () => String(min + rnd(max - min + (rnd(10) === 0 ? 3 : 1)));
    const forms = ['*', '?', n(), n(), `${n()}-${n()}`, `*/${1 + rnd(max)}`,
      `${n()}/${1 + rnd(max)}`, `${n()}-${n()}/${1 + rnd(9)}`, `${n()},${n()}`,
      `${n()},${n()},${n()}`];
    if (kind === 'dom') forms.push('L', `${n()},L`, 'LW', `${n()}W`);
    if (kind === 'month') forms.push(pick(['JAN', 'feb', 'Jul', 'DEC']), 'JAN-MAR');
    if (kind === 'dow') {
      forms.push(`${n()}L`, `${n()}#${1 + rnd(5)}`, pick(['MON', 'sun', 'FRI', 'sat-SUN']),
        'MON-FRI', `${n()},${n()}L`, `${n()}#${rnd(7)}`);
    }
    if (rnd(25) === 0) forms.push('', `${n()}-`, 'x'); // no H: jobq refuses it on purpose
    return pick(forms);
  };
  const out = [];
  for (let i = 0; i < count; i++) {
    const six = rnd(2) === 1;
    const f = [piece(0, 59), piece(0, 59), piece(0, 23), piece(1, 31, 'dom'),
      piece(1, 12, 'month'), piece(0, 7, 'dow')];
    out.push((six ? f : f.slice(1)).map((x) => x || '*').join(' '));
  }
  return out;
}
const randomRows = [];
for (const p of randomPatterns(big ? 4000 : +(process.env.CRON_RANDOM || 300))) {
  for (const z of ['UTC', 'Europe/Berlin']) {
    for (const s of [Date.UTC(2024, 2, 30, 23, 17), Date.UTC(2025, 9, 26, 0, 0, 0, 500)]) {
      randomRows.push([p, z, s]);
    }
  }
}

const pats = big ? patterns.concat(bigPatterns) : patterns;
const zs = big ? zones.concat(bigZones) : zones;
// Whether a pattern parses does not depend on the zone: refused ones are tried once.
const valid = pats.filter((p) => nodeNext(p, 'UTC', 0) !== 'invalid');
const rows = pats.filter((p) => !valid.includes(p)).map((p) => [p, 'UTC', 0]);
for (const z of zs) {
  const starts = startTimes(z);
  for (const p of valid) for (const s of starts) rows.push([p, z, s]);
}
rows.push(...randomRows);
const input = rows.map(([p, z, s]) => `${p}\t${z}\t${s}`).join('\n') + '\n';
const res = spawnSync(helper, [], { input, maxBuffer: 1 << 28 });
if (res.status !== 0) {
  console.log('cron_table: helper failed', res.status, String(res.stderr));
  process.exit(1);
}
const got = String(res.stdout).split('\n');
let mismatches = 0;
for (let i = 0; i < rows.length; i++) {
  const [p, z, s] = rows[i];
  const want = nodeNext(p, z, s);
  if (got[i] !== want) {
    if (++mismatches <= 40) {
      const fmt = (r) => (r.startsWith('next ') ? new Date(+r.slice(5)).toISOString() : r);
      console.log(`MISMATCH '${p}' ${z} after ${new Date(s).toISOString()}: ` +
        `cron-parser ${fmt(want)}, jobq ${fmt(got[i] || '(nothing)')}`);
    }
  }
}
console.log(`cron_table: ${rows.length} cases (${pats.length - valid.length} refused patterns, ` +
  `${valid.length} patterns x ${zs.length} zones x start times, ${randomRows.length} of random ` +
  `patterns), ${mismatches} mismatches`);
process.exit(mismatches ? 1 : 0);
