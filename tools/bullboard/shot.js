// Checks a job's progress and logs through Bull Board's API, then opens the job's page in
// headless Chromium, shows its Logs tab and saves a screenshot.
//   node shot.js BASE_URL QUEUE JOB_ID OUT.png PROGRESS_JSON LOG_LINE...
// Exits 0 when the API and the page show the progress and every log line, 1 otherwise.
'use strict';
const launch = require('./browser.js');

const [base, queue, jobId, out, progress, ...lines] = process.argv.slice(2);

async function getJson(path) {
  const res = await fetch(base + path);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

function fail(msg) {
  console.error(`FAIL ${msg}`);
  process.exitCode = 1;
}

(async () => {
  const job = (await getJson(`/api/queues/${encodeURIComponent(queue)}/${jobId}`)).job;
  if (JSON.stringify(job.progress) !== progress)
    fail(`API progress ${JSON.stringify(job.progress)}, expected ${progress}`);
  const logs = await getJson(`/api/queues/${encodeURIComponent(queue)}/${jobId}/logs`);
  for (const l of lines) if (!logs.includes(l)) fail(`API logs lack '${l}': ${JSON.stringify(logs)}`);

  const browser = await launch();
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    await page.goto(`${base}/queue/${encodeURIComponent(queue)}/${jobId}`, {
      waitUntil: 'networkidle0',
      timeout: 30000,
    });
    // the job card's tabs: open Logs
    const [logsTab] = await page.$$("xpath/.//li[normalize-space(.)='Logs'] | .//button[normalize-space(.)='Logs'] | .//a[normalize-space(.)='Logs']");
    if (!logsTab) fail('no Logs tab on the job page');
    else await logsTab.click();
    await page
      .waitForFunction((t) => document.body.innerText.includes(t), { timeout: 15000 }, lines[0])
      .catch(() => fail(`the page never showed '${lines[0]}'`));
    const text = await page.evaluate(() => document.body.innerText);
    for (const l of lines) if (!text.includes(l)) fail(`the page lacks '${l}'`);
    // a number is drawn as a percentage on the job's card
    if (/^[0-9]+$/.test(progress) && !text.includes(`${progress}%`))
      fail(`the page lacks the progress ${progress}%`);
    await page.screenshot({ path: out, fullPage: true });
    console.log(`screenshot ${out}`);
  } finally {
    await browser.close();
  }
})().catch((e) => {
  fail(e.stack || String(e));
});
