// Accessibility checks with axe-core. The script goes in through page.evaluate (as @axe-core/playwright does), so a
// page's Content-Security-Policy cannot block it. Full results are kept in e2e/artifacts/a11y/ when a name is given.
const fs = require('node:fs');
const { test, expect } = require('@playwright/test');
const { artifactPath } = require('./artifacts');

const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const SERIOUS = new Set(['serious', 'critical']);

/**
 * Runs axe on the page and returns every violation, each `{ id, impact, help, helpUrl, nodes: [{ target, html,
 * failureSummary }] }`. `context` is axe's (a selector, or { include, exclude }; default the whole document),
 * `options` are axe.run's (e.g. { runOnly: ['wcag2a', 'wcag2aa'] }). With `name`, the full results are written to
 * artifacts/a11y/<spec>--<name>.json.
 */
async function axeViolations(page, { context, options, name } = {}) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(axeSource);
  const results = await page.evaluate(([ctx, opts]) => window.axe.run(ctx || document, opts || {}), [context, options]);
  if (name) {
    let info;
    try { info = test.info(); } catch { info = undefined; }
    fs.writeFileSync(artifactPath('a11y', name, 'json', info), JSON.stringify(results, null, 2));
  }
  return results.violations;
}

/** The violations of impact serious or critical (the ones the project's bar forbids on the login pages). */
async function seriousViolations(page, opts) {
  return (await axeViolations(page, opts)).filter((v) => SERIOUS.has(v.impact));
}

/** One readable line per violation and node, for failure messages. */
function describe(violations) {
  return violations
    .flatMap((v) => v.nodes.map((n) => `  [${v.impact}] ${v.id}: ${v.help} — ${n.target.join(' ')}\n      ${n.html}`))
    .join('\n');
}

/** Fails the test if axe finds a serious or critical violation; the message lists each with its element. */
async function expectNoSeriousViolations(page, opts) {
  const found = await seriousViolations(page, opts);
  expect(found.map((v) => v.id), `serious accessibility violations on ${page.url()}:\n${describe(found)}`).toEqual([]);
}

module.exports = { axeViolations, seriousViolations, expectNoSeriousViolations, describe };
