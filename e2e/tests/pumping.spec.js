// The SMS pumping page: codes sent by the MFA API show as segments (range, address, country) with their figures;
// Trust marks a segment trusted through the Management API; a bad setting is refused with a message that names it
// and what was typed stays in the form. Walked with axe; screenshots kept.
const { test, expect } = require('../lib/fixtures');
const { expectNoSeriousViolations } = require('../lib/a11y');
const { shot } = require('../lib/shots');
const { signIn } = require('../lib/dashboard');
const { oauthToken, uniquePhone, baseUrl } = require('../lib/mgmt');

const PAGE = '/dashboard/security/sms-pumping';
const API = '/guardian/factors/phone/pumping-detection';

/** Log `user` in with the password grant and ask for an enrollment code to `phone` (never typed). */
async function enrollmentCode(app, user, phone) {
  const login = await oauthToken({
    grant_type: 'password', client_id: app.client_id, client_secret: app.client_secret,
    username: user.email, password: user.password, scope: 'openid',
  }).then(() => { throw new Error('expected mfa_required'); }, (e) => e);
  expect(login.body.error).toBe('mfa_required');
  const res = await fetch(`${baseUrl()}/mfa/associate`, {
    method: 'POST',
    headers: { authorization: `Bearer ${login.body.mfa_token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ authenticator_types: ['oob'], oob_channels: ['sms'], phone_number: phone }),
  });
  expect(res.status).toBe(200);
}

test('segments show their figures, Trust marks one trusted, a bad setting is refused by name', async ({ browser, mgmt }) => {
  const before = await mgmt.get(API);
  const operator = await mgmt.createUser({ app_metadata: { roles: ['callsign:admin'] } });
  const app = await mgmt.createClient({ callbacks: ['http://127.0.0.1/callback'] });
  const user = await mgmt.createUser();
  await mgmt.enablePhoneMfa();
  const context = await browser.newContext({ baseURL: process.env.CALLSIGN_E2E_BASE_URL, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  try {
    const phone = uniquePhone();
    await enrollmentCode(app, user, phone);
    const range = `prefix:${phone.slice(0, -3)}`;
    // The code is counted once the provider took it.
    await mgmt.waitForMessage(phone, { after: [] });
    await signIn(page, operator);
    await expect.poll(async () => {
      await page.goto(PAGE);
      return page.getByRole('row', { name: new RegExp(range.replace('+', '\\+')) }).count();
    }).toBe(1);
    const row = page.getByRole('row', { name: new RegExp(range.replace('+', '\\+')) });
    await expect(row).toContainText('OK');
    await expect(page.getByRole('row', { name: /country:US/ })).toHaveCount(1);
    await shot(page, 'pumping 01 segments');
    await expectNoSeriousViolations(page, { name: 'pumping 01 segments' });

    await row.getByRole('button', { name: `Trust ${range}` }).click();
    await expect(page.getByRole('status').first()).toHaveText(`${range} is trusted: it is never held.`);
    await expect(page.getByRole('row', { name: new RegExp(range.replace('+', '\\+')) })).toContainText('Trusted');
    expect((await mgmt.get(API)).trusted).toContain(range);

    await page.getByLabel('Lowest conversion rate').fill('lots');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect(page.locator('section[aria-labelledby=settings-h] [role=alert]')).toContainText('min_conversion');
    await expect(page.getByLabel('Lowest conversion rate')).toHaveValue('lots');
    await shot(page, 'pumping 02 refused');
    await expectNoSeriousViolations(page, { name: 'pumping 02 refused' });
  } finally {
    await mgmt.put(API, before);
    await mgmt.resetGuardian();
    await context.close();
  }
});
