// A walk through every login page (login, sign-up, phone enrollment, code entry, an error page, the 404 page) at
// 1280 px, at 390 px (a phone) and at 1280 px in the dark colour scheme, each time without branding and with it (a
// logo, a dark primary colour, a light page background). On each page: a full-page screenshot, axe (no serious or
// critical violations, colour contrast included), nothing wider than the screen, the card clear of the screen's
// edges on the phone; the code input's inputmode and autocomplete; with branding, the logo (named by the tenant's
// friendly name), the name, the primary colour on the buttons and the background behind the card. Then the
// dashboard's Branding page: its preview follows the colour inputs as they change.
const { test, expect } = require('../lib/fixtures');
const { expectNoSeriousViolations } = require('../lib/a11y');
const { uniquePhone, baseUrl } = require('../lib/mgmt');
const { shot } = require('../lib/shots');

const WIDE = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const callback = () => `${baseUrl()}/e2e/callback`;

// The logo is served by the test (no network): an https origin the pages' CSP lets in once it is the logo's.
const LOGO_ORIGIN = 'https://logo.e2e.example';
const LOGO_SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="160" height="52" viewBox="0 0 160 52">'
  + '<rect width="160" height="52" rx="8" fill="#1a237e"/><text x="80" y="34" font-size="22" fill="#fff" '
  + 'text-anchor="middle" font-family="sans-serif">ACME</text></svg>';
const BRANDING = {
  colors: { primary: '#1a237e', page_background: '#f3efe6' },
  logo_url: `${LOGO_ORIGIN}/logo.svg`,
};
const NAME = 'Acme Walk';

function authorizeUrl(clientId) {
  const q = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: callback(), state: 'st-walk', scope: 'openid',
  });
  return `/authorize?${q}`;
}

const rgb = (hex) => {
  const h = hex.replace('#', '');
  return `rgb(${parseInt(h.slice(0, 2), 16)}, ${parseInt(h.slice(2, 4), 16)}, ${parseInt(h.slice(4, 6), 16)})`;
};

/** The checks every login page gets. */
async function checkPage(page, { viewport, tag, name, branded }) {
  await expect(page.locator('main.card')).toBeVisible();
  const brand = page.locator('#brand');
  if (branded) {
    const logo = brand.getByRole('img', { name: NAME });
    await expect(logo).toBeVisible();
    // Loaded (the CSP let it in) and sized sensibly.
    expect(await logo.evaluate((img) => img.complete && img.naturalWidth > 0)).toBe(true);
    const box = await logo.boundingBox();
    expect(box.height).toBeLessThanOrEqual(60);
    expect(box.width).toBeLessThanOrEqual(viewport.width);
    await expect(brand).toContainText(NAME);
    const bodyBg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bodyBg).toBe(rgb(BRANDING.colors.page_background));
    const button = page.locator('main.card button[type=submit]:not(.secondary)').first();
    if (await button.count()) {
      expect(await button.evaluate((b) => getComputedStyle(b).backgroundColor)).toBe(rgb(BRANDING.colors.primary));
    }
  } else {
    await expect(brand.locator('img')).toHaveCount(0);
    await expect(brand).toHaveText('Callsign');
  }
  await shot(page, `${tag} ${name}`);
  await expectNoSeriousViolations(page, { name: `${tag} ${name}` });
  // Nothing is wider than the screen.
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(viewport.width);
  if (viewport === PHONE) {
    // The card keeps clear of the screen's edges.
    const card = await page.locator('main.card').boundingBox();
    expect(card.x).toBeGreaterThanOrEqual(8);
    expect(card.x + card.width).toBeLessThanOrEqual(PHONE.width - 8);
  }
}

async function walk({ browser, mgmt }, { viewport, colorScheme, tag, branded }) {
  await mgmt.enablePhoneMfa({ messageTypes: ['sms'] });
  const [conn] = await mgmt.get('/connections');
  await mgmt.patch(`/connections/${conn.id}`, { options: { disable_signup: false } });
  if (branded) {
    await mgmt.patch('/branding', BRANDING);
    await mgmt.patch('/tenants/settings', { friendly_name: NAME });
  }
  const app = await mgmt.createClient({ callbacks: [callback()] });
  const user = await mgmt.createUser();
  const context = await browser.newContext({ baseURL: process.env.CALLSIGN_E2E_BASE_URL, viewport, colorScheme });
  await context.route(`${LOGO_ORIGIN}/**`, (route) => route.fulfill({ contentType: 'image/svg+xml', body: LOGO_SVG }));
  const page = await context.newPage();
  const opts = { viewport, tag: `${tag}${branded ? ' branded' : ''}`, branded };
  try {
    await page.goto(authorizeUrl(app.client_id));
    await expect(page).toHaveURL(/\/u\/login$/);
    await checkPage(page, { ...opts, name: '1 login' });

    await page.getByRole('link', { name: 'Sign up' }).click();
    await expect(page).toHaveURL(/\/u\/signup$/);
    await checkPage(page, { ...opts, name: '2 sign-up' });
    await page.getByRole('link', { name: 'Log in' }).click();
    await expect(page).toHaveURL(/\/u\/login$/);

    await page.getByLabel('Email address').fill(user.email);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Continue' }).click();
    await expect(page).toHaveURL(/\/u\/mfa\/enroll$/);
    await checkPage(page, { ...opts, name: '3 enroll' });

    const phone = uniquePhone();
    await page.getByLabel('Country').selectOption('US');
    await page.getByLabel('Phone number').fill(phone.slice(2));
    await page.getByRole('button', { name: 'Continue' }).click();
    await expect(page).toHaveURL(/\/u\/mfa\/code$/);
    const input = page.getByLabel('Enter the 6-digit code');
    await expect(input).toHaveAttribute('inputmode', 'numeric');
    await expect(input).toHaveAttribute('autocomplete', 'one-time-code');
    await checkPage(page, { ...opts, name: '4 code' });

    // An error page: an application that does not exist.
    await page.goto('/authorize?response_type=code&client_id=no-such-client&redirect_uri=https%3A%2F%2Fx.example%2F');
    await expect(page.getByRole('alert')).toBeVisible();
    await checkPage(page, { ...opts, name: '5 error' });

    await page.goto('/u/no-such-page');
    await checkPage(page, { ...opts, name: '6 not found' });
  } finally {
    await context.close();
    await mgmt.patch(`/connections/${conn.id}`, { options: { disable_signup: true } });
    await mgmt.resetGuardian();
    if (branded) {
      await mgmt.patch('/branding', { colors: null, logo_url: null, favicon_url: null });
      await mgmt.patch('/tenants/settings', { friendly_name: 'Callsign' });
    }
    await mgmt.delete(`/users/${encodeURIComponent(user.user_id)}`);
    await mgmt.delete(`/clients/${encodeURIComponent(app.client_id)}`);
  }
}

for (const branded of [false, true]) {
  const what = branded ? 'with branding' : 'without branding';
  test(`every login page at 1280 px, ${what}`, async ({ browser, mgmt }) => {
    await walk({ browser, mgmt }, { viewport: WIDE, colorScheme: 'light', tag: 'wide', branded });
  });
  test(`every login page at 390 px, ${what}`, async ({ browser, mgmt }) => {
    await walk({ browser, mgmt }, { viewport: PHONE, colorScheme: 'light', tag: 'phone', branded });
  });
  test(`every login page at 1280 px in the dark colour scheme, ${what}`, async ({ browser, mgmt }) => {
    await walk({ browser, mgmt }, { viewport: WIDE, colorScheme: 'dark', tag: 'dark', branded });
  });
}

test('the dashboard Branding page: the preview follows the colour inputs, and a save reaches the login page', async ({ browser, mgmt }) => {
  const operator = await mgmt.createUser({ app_metadata: { roles: ['callsign:admin'] } });
  const app = await mgmt.createClient({ callbacks: [callback()] });
  const context = await browser.newContext({ baseURL: process.env.CALLSIGN_E2E_BASE_URL, viewport: WIDE });
  await context.route(`${LOGO_ORIGIN}/**`, (route) => route.fulfill({ contentType: 'image/svg+xml', body: LOGO_SVG }));
  const page = await context.newPage();
  try {
    await page.goto('/dashboard/login');
    await page.getByLabel('Email').fill(operator.email);
    await page.getByLabel('Password').fill(operator.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(/\/dashboard$/);
    await page.getByRole('navigation', { name: 'Dashboard' }).getByRole('link', { name: 'Universal Login' }).click();
    await expect(page).toHaveURL(/\/dashboard\/branding$/);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Universal Login');
    await shot(page, 'dashboard branding');
    await expectNoSeriousViolations(page, { name: 'dashboard branding' });

    const previewButton = page.locator('#preview-button');
    const bg = () => previewButton.evaluate((b) => getComputedStyle(b).backgroundColor);
    const fg = () => previewButton.evaluate((b) => getComputedStyle(b).color);
    const before = await bg();
    // The picker: the preview's button takes the colour, with readable (white) text; the hex field follows.
    await page.locator('#b-primary-picker').fill('#aa0000');
    await expect.poll(bg).toBe('rgb(170, 0, 0)');
    expect(before).not.toBe('rgb(170, 0, 0)');
    expect(await fg()).toBe('rgb(255, 255, 255)');
    await expect(page.locator('#b-primary')).toHaveValue('#aa0000');
    // The hex field: a light colour gets black text; the picker follows.
    await page.locator('#b-primary').fill('#ffeb3b');
    await expect.poll(bg).toBe('rgb(255, 235, 59)');
    expect(await fg()).toBe('rgb(0, 0, 0)');
    await expect(page.locator('#b-primary-picker')).toHaveValue('#ffeb3b');
    // The page background.
    await page.locator('#b-page_background').fill('#0b1a33');
    await expect.poll(() => page.locator('#brand-preview').evaluate((p) => getComputedStyle(p).backgroundColor))
      .toBe('rgb(11, 26, 51)');
    await shot(page, 'dashboard branding preview changed');

    // Save: the login page shows it.
    await page.locator('#b-logo').fill(BRANDING.logo_url);
    await page.locator('#b-primary').fill('#1a237e');
    await page.locator('#b-page_background').fill('#f3efe6');
    await page.getByRole('button', { name: 'Save branding' }).click();
    await expect(page.getByRole('status')).toHaveText('Branding saved.');
    expect(await mgmt.get('/branding')).toEqual(BRANDING);
    await expect(page.locator('#preview-logo')).toBeVisible();
    await expectNoSeriousViolations(page, { name: 'dashboard branding saved' });
    await page.setViewportSize(PHONE);
    await shot(page, 'dashboard branding 390px');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    await page.setViewportSize(WIDE);

    await page.goto(authorizeUrl(app.client_id));
    await expect(page).toHaveURL(/\/u\/login$/);
    await expect(page.locator('#brand img')).toBeVisible();
    const button = page.getByRole('button', { name: 'Continue' });
    expect(await button.evaluate((b) => getComputedStyle(b).backgroundColor)).toBe(rgb(BRANDING.colors.primary));

    // A refusal is explained in the section, what was typed kept.
    await page.goto('/dashboard/branding');
    // (A bad colour is already stopped by the field's pattern; the server's own check speaks for the logo.)
    await page.locator('#b-logo').fill('http://cdn.example/logo.png');
    await page.getByRole('button', { name: 'Save branding' }).click();
    await expect(page.getByRole('alert')).toHaveText('logo_url: Must be an https URL (http only for localhost).');
    await expect(page.locator('#b-logo')).toHaveValue('http://cdn.example/logo.png');
    await shot(page, 'dashboard branding refused');
    await expectNoSeriousViolations(page, { name: 'dashboard branding refused' });
  } finally {
    await context.close();
    await mgmt.patch('/branding', { colors: null, logo_url: null, favicon_url: null });
    await mgmt.delete(`/users/${encodeURIComponent(operator.user_id)}`);
    await mgmt.delete(`/clients/${encodeURIComponent(app.client_id)}`);
  }
});
