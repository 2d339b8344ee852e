// Full-page screenshots kept in e2e/artifacts/screenshots/ as `<spec>--<name>.png`.
const { test } = require('@playwright/test');
const { artifactPath } = require('./artifacts');

/**
 * Saves a full-page screenshot of `page` named `name` (e.g. 'login page', 'sms code sent') and returns its path.
 * Inside a test the file name starts with the spec's name (e.g. `login--wrong-password.png`).
 */
async function shot(page, name) {
  let info;
  try { info = test.info(); } catch { info = undefined; } // outside a test
  const file = artifactPath('screenshots', name, 'png', info);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

module.exports = { shot };
