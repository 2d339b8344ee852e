// Playwright drives Debian's Chromium (/usr/bin/chromium); it never downloads a browser of its own.
// run.sh starts Callsign and the app's server and sets the CALLSIGN_SPA_* variables.
const path = require('node:path');
const { defineConfig } = require('@playwright/test');

module.exports = defineConfig({
  testDir: '.',
  testMatch: 'spa.spec.js',
  outputDir: process.env.CALLSIGN_SPA_ARTIFACTS || path.join(__dirname, 'artifacts'),
  timeout: 60_000,
  expect: { timeout: 10_000 },
  // The steps share one browser context (the SSO cookie) and one tenant: one at a time, in order.
  workers: 1,
  fullyParallel: false,
  reporter: [['list'], [path.join(__dirname, 'summary-reporter.js')]],
  use: {
    headless: true,
    ignoreHTTPSErrors: true,
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CALLSIGN_SPA_CHROMIUM || '/usr/bin/chromium',
      // We run as root (no sandbox); the network is closed, so keep Chromium from calling home.
      args: [
        '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
      ],
    },
  },
});
