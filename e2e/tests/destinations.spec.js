// The Phone destinations page: the country filter box (app.js) narrows the list as you type and Enter in it does
// not submit; ticking a country and saving works with the filter applied; without JavaScript the whole list shows.
const { test, expect } = require('../lib/fixtures');
const { expectNoSeriousViolations } = require('../lib/a11y');
const { shot } = require('../lib/shots');
const { signIn } = require('../lib/dashboard');

const PAGE = '/dashboard/security/phone-destinations';
const API = '/guardian/factors/phone/destination-policy';

test('the country filter narrows the list and a filtered choice saves', async ({ browser, mgmt }) => {
  const before = await mgmt.get(API);
  const operator = await mgmt.createUser({ app_metadata: { roles: ['callsign:admin'] } });
  const context = await browser.newContext({ baseURL: process.env.CALLSIGN_E2E_BASE_URL, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  try {
    await signIn(page, operator);
    await page.goto(PAGE);
    const sms = page.locator('section#sms');
    const visible = sms.locator('fieldset.country-list label.choice:visible');
    const total = await visible.count();
    expect(total).toBeGreaterThan(200);
    await sms.getByLabel('Find a country').fill('kingdom');
    await expect(visible).toHaveCount(1);
    await expect(visible.first()).toContainText('United Kingdom (GB, +44)');
    await sms.getByLabel('Find a country').press('Enter');
    await expect(page).toHaveURL(new RegExp(`${PAGE}$`));
    await sms.getByLabel('Find a country').fill('+33');
    await expect(visible.first()).toContainText('France');
    await sms.getByLabel('Find a country').fill('');
    await expect(visible).toHaveCount(total);
    await sms.getByLabel('Find a country').fill('GB');
    await sms.getByLabel('Only the countries below').check();
    await sms.getByLabel('United Kingdom (GB, +44)').check();
    await shot(page, 'destinations 01 filtered');
    await expectNoSeriousViolations(page, { name: 'destinations 01 filtered' });
    await sms.getByRole('button', { name: 'Save SMS' }).click();
    await expect(page.getByRole('status').first()).toHaveText('SMS destinations saved.');
    const saved = await mgmt.get(API);
    expect(saved.sms).toEqual({ mode: 'allow', countries: ['GB'], calling_codes: [] });
    await expect(page.locator('#all-countries-notice')).toContainText('for Voice calls.');
  } finally {
    await mgmt.put(API, before);
    await context.close();
  }
});

test('without JavaScript every country is listed', async ({ browser, mgmt }) => {
  const operator = await mgmt.createUser({ app_metadata: { roles: ['callsign:admin'] } });
  const context = await browser.newContext({ baseURL: process.env.CALLSIGN_E2E_BASE_URL, javaScriptEnabled: false });
  const page = await context.newPage();
  try {
    await signIn(page, operator);
    await page.goto(PAGE);
    expect(await page.locator('section#voice fieldset.country-list label.choice:visible').count()).toBeGreaterThan(200);
  } finally {
    await context.close();
  }
});
