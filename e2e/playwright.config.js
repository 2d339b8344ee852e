// Playwright drives Debian's Chromium (/usr/bin/chromium); it never downloads a browser of its own.
// run.sh starts the server and sets CALLSIGN_E2E_BASE_URL and CALLSIGN_E2E_BOOTSTRAP.
const path = require('node:path');
const { defineConfig } = require('@playwright/test');

module.exports = defineConfig({
  testDir: './tests',
  // Inside artifacts/ so failure screenshots and traces are kept with the page screenshots.
  outputDir: './artifacts/test-results',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  // One server for the whole run, and Guardian settings (factors, policies) are tenant-wide: one test at a time.
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  reporter: [['list'], [path.join(__dirname, 'lib', 'summary-reporter.js')]],
  use: {
    baseURL: process.env.CALLSIGN_E2E_BASE_URL,
    headless: true,
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CALLSIGN_E2E_CHROMIUM || '/usr/bin/chromium',
      // We run as root (no sandbox); the network is closed, so keep Chromium from calling home.
      args: [
        '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
      ],
    },
  },
});
