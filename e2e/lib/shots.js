// Full-page screenshots kept in e2e/artifacts/screenshots/ as `<spec>--<name>.png`.
const { test } = require('@playwright/test');
const { artifactPath } = require('./artifacts');

/**
 * Saves a full-page screenshot of `page` named `name` (e.g. 'login page', 'sms code sent') and returns its path.
 * Inside a test the file name starts with the spec's name (e.g. `login--wrong-password.png`). With
 * `{ fullPage: false }`, only what the screen shows (readable where a full page is very long, e.g. on a phone).
 */
async function shot(page, name, { fullPage = true } = {}) {
  let info;
  try { info = test.info(); } catch { info = undefined; } // outside a test
  const file = artifactPath('screenshots', name, 'png', info);
  await page.screenshot({ path: file, fullPage });
  return file;
}

module.exports = { shot };
