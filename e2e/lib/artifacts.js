// Where kept files go: e2e/artifacts/ (or CALLSIGN_E2E_ARTIFACTS). run.sh empties it at the start of a run.
const fs = require('node:fs');
const path = require('node:path');

const root = process.env.CALLSIGN_E2E_ARTIFACTS || path.join(__dirname, '..', 'artifacts');

/** A readable file-name part: 'Login page / wrong password' -> 'login-page-wrong-password'. */
function slug(s) { return String(s).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80); }

/** `<artifacts>/<sub>/<spec file>--<name>.<ext>`, its folder made. */
function artifactPath(sub, name, ext, testInfo) {
  const dir = path.join(root, sub);
  fs.mkdirSync(dir, { recursive: true });
  const spec = testInfo ? `${slug(path.basename(testInfo.file).replace(/\.spec\.[jt]s$/, ''))}--` : '';
  return path.join(dir, `${spec}${slug(name)}.${ext}`);
}

module.exports = { root, slug, artifactPath };
