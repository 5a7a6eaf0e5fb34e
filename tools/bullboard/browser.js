// Headless Chromium (the system's, $CHROMIUM) through puppeteer-core, for the Bull Board checks.
'use strict';
const puppeteer = require('puppeteer-core');

module.exports = () =>
  puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
