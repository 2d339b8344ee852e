// `test` and `expect` for specs, with two extra fixtures:
//   mgmt — a connected Mgmt (lib/mgmt.js), one per worker;
//   shot — `await shot('name')`, a full-page screenshot of this test's page (lib/shots.js).
const base = require('@playwright/test');
const { Mgmt } = require('./mgmt');
const shots = require('./shots');

const test = base.test.extend({
  mgmt: [async ({}, use) => { await use(await Mgmt.connect()); }, { scope: 'worker' }],
  shot: async ({ page }, use) => { await use((name) => shots.shot(page, name)); },
});

module.exports = { test, expect: base.expect };
