// The Phone Message page with the keyboard alone (after signing in): the factor and delivery-method switches, the
// provider cards (arrow keys), only the chosen provider's settings shown, one save per section that keeps what was
// typed in the others, "Unsaved changes" beside a section's save, and a question before leaving with unsaved
// changes. Every focused control shows a focus ring. Then the same page without JavaScript: every provider's
// settings are shown and saving still works. Screenshots and axe at each step.
const { test, expect } = require('../lib/fixtures');
const { expectNoSeriousViolations } = require('../lib/a11y');
const { shot } = require('../lib/shots');
const { signIn } = require('../lib/dashboard');

const PAGE = '/dashboard/mfa/phone';
const SID = 'AC0000000000000000000000000000ce2e';

/** Presses Tab until the focused element matches `selector`; checks that it shows a focus ring. */
async function tabTo(page, selector, max = 80) {
  for (let i = 0; i < max; i += 1) {
    await page.keyboard.press('Tab');
    const found = await page.evaluate((sel) => {
      const el = document.activeElement;
      if (!el || !el.matches(sel)) return null;
      // The ring is on the control, or on the card around a radio.
      const ringed = el.closest('label.provider-card') || el;
      const s = getComputedStyle(ringed);
      return { outline: s.outlineStyle, width: parseFloat(s.outlineWidth) };
    }, selector);
    if (found) {
      expect(found.outline, `a focus ring on ${selector}`).not.toBe('none');
      expect(found.width, `a focus ring on ${selector}`).toBeGreaterThanOrEqual(2);
      return;
    }
  }
  throw new Error(`Tab never reached ${selector}`);
}

const unsaved = (page, action) => page.locator(`form[action="${action}"] [data-unsaved]`);

test('the Phone Message page with the keyboard alone', async ({ browser, mgmt }) => {
  const before = {
    factors: await mgmt.get('/guardian/factors'),
    types: await mgmt.get('/guardian/factors/phone/message-types'),
    provider: await mgmt.get('/guardian/factors/phone/selected-provider'),
  };
  const operator = await mgmt.createUser({ app_metadata: { roles: ['callsign:admin'] } });
  await mgmt.setFactor('sms', false);
  await mgmt.setMessageTypes(['sms']);
  await mgmt.put('/guardian/factors/phone/selected-provider', { provider: 'auth0' });
  const context = await browser.newContext({ baseURL: process.env.CALLSIGN_E2E_BASE_URL, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  try {
    await signIn(page, operator);
    await page.goto(PAGE);
    await expect(page.getByRole('switch', { name: 'Phone Message' })).not.toBeChecked();
    // Only the chosen provider's settings: the built-in one has none, so no group shows.
    await expect(page.locator('fieldset.provider-fields:visible')).toHaveCount(0);
    await expect(page.locator('fieldset.provider-fields')).not.toHaveCount(0);

    // The factor: Tab to its switch, Space turns it on, "Unsaved changes" shows; Tab to Save, Enter.
    await tabTo(page, '#factor-enabled');
    await page.keyboard.press(' ');
    await expect(page.getByRole('switch', { name: 'Phone Message' })).toBeChecked();
    await expect(unsaved(page, '/dashboard/mfa/phone/factor')).toHaveText('Unsaved changes');
    await page.keyboard.press(' ');
    await expect(unsaved(page, '/dashboard/mfa/phone/factor')).toHaveText('');
    await page.keyboard.press(' ');
    await tabTo(page, 'form[action="/dashboard/mfa/phone/factor"] button[type=submit]');
    await page.keyboard.press('Enter');
    await expect(page.getByRole('status').first()).toHaveText('The phone factor is on.');
    expect((await mgmt.get('/guardian/factors')).find((f) => f.name === 'sms').enabled).toBe(true);
    await expect(page.locator('#factor-state')).toContainText('The phone factor is on');
    await shot(page, 'keyboard 01 factor on');
    await expectNoSeriousViolations(page, { name: 'keyboard 01 factor on' });

    // Voice on, not saved yet.
    await tabTo(page, '#mt-voice');
    await page.keyboard.press(' ');
    await expect(unsaved(page, '/dashboard/mfa/phone/message-types')).toHaveText('Unsaved changes');

    // The provider cards: Tab reaches the chosen card, the arrow keys move the choice; the chosen provider's
    // settings appear and the others' stay hidden.
    await tabTo(page, 'input[name=provider]:checked');
    for (let i = 0; i < 12 && !(await page.locator('#p-twilio').isChecked()); i += 1) await page.keyboard.press('ArrowDown');
    await expect(page.locator('#p-twilio')).toBeChecked();
    await expect(page.locator('#fields-twilio')).toBeVisible();
    await expect(page.locator('fieldset.provider-fields:visible')).toHaveCount(1);
    await expect(unsaved(page, '/dashboard/mfa/phone/provider')).toHaveText('Unsaved changes');
    await shot(page, 'keyboard 02 twilio card chosen');
    await expectNoSeriousViolations(page, { name: 'keyboard 02 twilio card chosen' });
    await tabTo(page, '#twilio_sid');
    await page.keyboard.type(SID);
    await tabTo(page, '#twilio_auth_token');
    await page.keyboard.type('keyboard-walk-token-0123456789');
    await tabTo(page, '#twilio_from');
    await page.keyboard.type('+14155550123');

    // Leaving now asks first (and staying keeps everything).
    let asked = 0;
    page.once('dialog', async (d) => { asked += 1; expect(d.type()).toBe('beforeunload'); await d.dismiss(); });
    await page.locator('nav.side a[href="/dashboard/users"]').focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => asked).toBe(1);
    await expect(page).toHaveURL(/\/dashboard\/mfa\/phone/);
    await expect(page.locator('#twilio_sid')).toHaveValue(SID);

    // Save the provider: the page reloads, the voice switch typed in the other section is still on and still
    // marked unsaved (nothing else was saved with it).
    await tabTo(page, 'form[action="/dashboard/mfa/phone/provider"] button[type=submit]');
    await page.keyboard.press('Enter');
    await expect(page.getByRole('status').first()).toHaveText('Provider saved: Twilio.');
    expect(await mgmt.get('/guardian/factors/phone/selected-provider')).toEqual({ provider: 'twilio' });
    expect(await mgmt.get('/guardian/factors/phone/message-types')).toEqual({ message_types: ['sms'] });
    await expect(page.locator('#mt-voice')).toBeChecked();
    await expect(unsaved(page, '/dashboard/mfa/phone/message-types')).toHaveText('Unsaved changes');
    await expect(page.locator('#fields-twilio')).toBeVisible();
    await expect(page.locator('fieldset.provider-fields:visible')).toHaveCount(1);
    await shot(page, 'keyboard 03 provider saved, voice kept unsaved');
    await expectNoSeriousViolations(page, { name: 'keyboard 03 provider saved' });

    // Save the delivery methods with the keyboard: both on.
    await page.locator('#mt-voice').focus();
    await tabTo(page, 'form[action="/dashboard/mfa/phone/message-types"] button[type=submit]');
    await page.keyboard.press('Enter');
    await expect(page.getByRole('status').first()).toHaveText('Delivery methods saved.');
    expect(await mgmt.get('/guardian/factors/phone/message-types')).toEqual({ message_types: ['sms', 'voice'] });
    await expect(page.locator('[data-unsaved]:not(:empty)')).toHaveCount(0);

    // Nothing unsaved: leaving does not ask.
    page.once('dialog', () => { asked += 1; });
    await page.locator('nav.side a[href="/dashboard/users"]').focus();
    await page.keyboard.press('Enter');
    await expect(page).toHaveURL(/\/dashboard\/users$/);
    expect(asked).toBe(1);
  } finally {
    await context.close();
    await mgmt.put('/guardian/factors/phone/selected-provider', before.provider);
    await mgmt.setMessageTypes(before.types.message_types);
    await mgmt.setFactor('sms', before.factors.find((f) => f.name === 'sms').enabled);
  }
});

test('the Phone Message page without JavaScript', async ({ browser, mgmt }) => {
  const before = await mgmt.get('/guardian/factors/phone/selected-provider');
  const operator = await mgmt.createUser({ app_metadata: { roles: ['callsign:admin'] } });
  const context = await browser.newContext({ baseURL: process.env.CALLSIGN_E2E_BASE_URL, javaScriptEnabled: false });
  const page = await context.newPage();
  try {
    await signIn(page, operator);
    await page.goto(PAGE);
    // Every provider's settings are shown, each under its name; the switches are still switches.
    const groups = page.locator('fieldset.provider-fields');
    expect(await groups.count()).toBeGreaterThan(1);
    await expect(page.locator('fieldset.provider-fields:visible')).toHaveCount(await groups.count());
    await expect(page.getByRole('group', { name: 'Twilio settings' })).toBeVisible();
    await expect(page.getByRole('switch', { name: 'SMS' })).toBeVisible();
    await shot(page, 'no-js phone message');
    await page.getByRole('radio', { name: 'Twilio', exact: true }).check();
    await page.locator('#twilio_sid').fill(SID);
    await page.locator('#twilio_auth_token').fill('no-js-token-0123456789');
    await page.locator('#twilio_from').fill('+14155550124');
    await page.getByRole('button', { name: 'Save provider' }).click();
    await expect(page.getByRole('status').first()).toHaveText('Provider saved: Twilio.');
    expect(await mgmt.get('/guardian/factors/phone/providers/twilio')).toMatchObject({ sid: SID, from: '+14155550124' });
  } finally {
    await context.close();
    await mgmt.put('/guardian/factors/phone/selected-provider', before);
  }
});
