// Universal Login in a real browser: a user logs in, enrolls a phone by SMS (and by voice), reads the code from the
// dev inbox, saves the recovery code and lands on the application's callback with a code that exchanges for tokens.
// A forged CSRF token and a foreign redirect_uri are refused. Every page is screenshotted and checked with axe.
const { createHash, randomBytes } = require('node:crypto');
const { test, expect } = require('../lib/fixtures');
const { expectNoSeriousViolations } = require('../lib/a11y');
const { oauthToken, uniquePhone, uniqueEmail, baseUrl } = require('../lib/mgmt');
const { shot } = require('../lib/shots');

// The application's callback: a path on the Callsign host that answers 404; the browser's URL is what counts.
const callback = () => `${baseUrl()}/e2e/callback`;

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

function authorizeUrl(clientId, { challenge, state = 'st-e2e', nonce = 'n-e2e', redirectUri = callback(), extra = {} }) {
  const q = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, state, nonce,
    scope: 'openid profile email', code_challenge: challenge, code_challenge_method: 'S256', ...extra,
  });
  return `/authorize?${q}`;
}

function jwtClaims(jwt) { return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8')); }

/** The code in the newest message to `phone` after `before`: SMS texts carry it whole, voice texts digit by digit. */
async function codeFor(mgmt, phone, before, channel) {
  const msg = await mgmt.waitForMessage(phone, { after: before, channel });
  return msg.text.replace(/\D/g, '').slice(0, 6);
}

/** A screenshot and an axe check of the page as it is now. */
async function checkPage(page, name) {
  await shot(page, name);
  await expectNoSeriousViolations(page, { name });
}

/** The whole flow for a new user, enrolling on `channel` ('sms' or 'voice'). */
async function enrollAndLand({ page, mgmt }, channel) {
  const app = await mgmt.createClient({ callbacks: [callback()] });
  const user = await mgmt.createUser();
  const { verifier, challenge } = pkce();
  const tag = channel === 'sms' ? 'sms' : 'voice';

  await page.goto(authorizeUrl(app.client_id, { challenge }));
  await expect(page).toHaveURL(/\/u\/login$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Log in');
  const csp = (await page.request.get('/u/login')).headers()['content-security-policy'];
  expect(csp).toContain("default-src 'none'");
  await checkPage(page, `${tag} 1 login`);

  // A wrong password first: the error is announced.
  await page.getByLabel('Email address').fill(user.email);
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Continue' }).click();
  await expect(page.getByRole('alert')).toHaveText('Wrong email or password.');
  await checkPage(page, `${tag} 2 wrong password`);

  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Continue' }).click();
  await expect(page).toHaveURL(/\/u\/mfa\/enroll$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Secure your account');

  const phone = uniquePhone();
  const before = await mgmt.devInbox({ to: phone });
  await page.getByLabel('Country').selectOption('US');
  await page.getByLabel('Phone number').fill(phone.slice(2)); // the national number; the country gives +1
  await page.getByLabel(channel === 'sms' ? 'Text message (SMS)' : 'Voice call').check();
  await checkPage(page, `${tag} 3 enroll`);
  await page.getByRole('button', { name: 'Continue' }).click();

  await expect(page).toHaveURL(/\/u\/mfa\/code$/);
  await expect(page.getByText(`XXXXXXXX${phone.slice(-4)}`)).toBeVisible();
  const input = page.getByLabel('Enter the 6-digit code');
  await expect(input).toHaveAttribute('autocomplete', 'one-time-code');
  await expect(input).toHaveAttribute('inputmode', 'numeric');
  // The resend button counts down (progressive enhancement) and the wait is written out.
  await expect(page.getByText(/You can ask for a new code in \d+ seconds\./)).toBeVisible();
  await expect(page.getByRole('button', { name: /Send a new code/ })).toBeDisabled();
  await checkPage(page, `${tag} 4 code`);

  const code = await codeFor(mgmt, phone, before, channel);
  expect(code).toMatch(/^\d{6}$/);
  const wrong = code === '000000' ? '111111' : '000000';
  await input.fill(wrong);
  await page.getByRole('button', { name: 'Continue' }).click();
  await expect(page.getByRole('alert')).toHaveText('The code you entered is invalid.');
  await checkPage(page, `${tag} 5 wrong code`);
  await page.getByLabel('Enter the 6-digit code').fill(code);
  await page.getByRole('button', { name: 'Continue' }).click();

  await expect(page).toHaveURL(/\/u\/mfa\/recovery-code$/);
  const recovery = (await page.locator('#recovery-code').textContent()).replace(/\s/g, '');
  expect(recovery).toMatch(/^[A-Z0-9]{24}$/);
  await checkPage(page, `${tag} 6 recovery code`);
  await page.getByRole('button', { name: 'I have saved the code, continue' }).click();

  await page.waitForURL((u) => u.href.startsWith(callback()));
  const landed = new URL(page.url());
  expect(landed.searchParams.get('state')).toBe('st-e2e');
  const authCode = landed.searchParams.get('code');
  expect(authCode).toBeTruthy();

  const tokens = await oauthToken({
    grant_type: 'authorization_code', client_id: app.client_id, client_secret: app.client_secret,
    code: authCode, redirect_uri: callback(), code_verifier: verifier,
  });
  const id = jwtClaims(tokens.id_token);
  expect(id).toMatchObject({ sub: user.user_id, aud: app.client_id, nonce: 'n-e2e', email: user.email });
  expect(id.amr).toContain('mfa');
  const info = await fetch(`${baseUrl()}/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  expect(info.status).toBe(200);
  expect((await info.json()).sub).toBe(user.user_id);

  // The code is single use.
  const again = await oauthToken({
    grant_type: 'authorization_code', client_id: app.client_id, client_secret: app.client_secret,
    code: authCode, redirect_uri: callback(), code_verifier: verifier,
  }).then(() => null, (e) => e);
  expect(again.status).toBe(403);
  expect(again.body.error).toBe('invalid_grant');
  return { app, user, phone, recovery };
}

test.describe('Universal Login', () => {
  test.afterEach(async ({ mgmt }) => { await mgmt.resetGuardian(); });

  test('SMS: log in, enroll, code from the dev inbox, recovery code, callback, tokens', async ({ page, mgmt }) => {
    await mgmt.enablePhoneMfa({ messageTypes: ['sms', 'voice'] });
    await mgmt.setFactor('recovery-code', true);
    await enrollAndLand({ page, mgmt }, 'sms');
  });

  test('voice: the same flow with a phone call', async ({ page, mgmt }) => {
    await mgmt.enablePhoneMfa({ messageTypes: ['sms', 'voice'] });
    await mgmt.setFactor('recovery-code', true);
    await enrollAndLand({ page, mgmt }, 'voice');
  });

  test('a returning user: "call me instead" and the recovery code', async ({ page, mgmt, browser }) => {
    await mgmt.enablePhoneMfa({ messageTypes: ['sms', 'voice'] });
    await mgmt.setFactor('recovery-code', true);
    const { app, user, phone, recovery } = await enrollAndLand({ page, mgmt }, 'sms');

    // A fresh browser (no SSO session): password, then the code page straight away.
    const context = await browser.newContext({ baseURL: baseUrl() });
    const p = await context.newPage();
    try {
      const { challenge } = pkce();
      const before = await mgmt.devInbox({ to: phone });
      await p.goto(authorizeUrl(app.client_id, { challenge }));
      await p.getByLabel('Email address').fill(user.email);
      await p.getByLabel('Password').fill(user.password);
      await p.getByRole('button', { name: 'Continue' }).click();
      await expect(p).toHaveURL(/\/u\/mfa\/code$/);
      await mgmt.waitForMessage(phone, { after: before, channel: 'sms' });

      const beforeCall = await mgmt.devInbox({ to: phone });
      await p.getByRole('button', { name: 'Call me instead' }).click();
      await expect(p.getByRole('status')).toHaveText('A new code has been sent.');
      await expect(p.getByText(/calling XXXXXXXX/)).toBeVisible();
      await checkPage(p, 'returning 1 call me instead');
      const voiceCode = await codeFor(mgmt, phone, beforeCall, 'voice');
      expect(voiceCode).toMatch(/^\d{6}$/);

      await p.getByRole('link', { name: 'Use a recovery code' }).click();
      await expect(p).toHaveURL(/\/u\/mfa\/recovery$/);
      await checkPage(p, 'returning 2 recovery entry');
      await p.getByLabel('Recovery code').fill(recovery);
      await p.getByRole('button', { name: 'Continue' }).click();
      await expect(p).toHaveURL(/\/u\/mfa\/recovery-code$/);
      const fresh = (await p.locator('#recovery-code').textContent()).replace(/\s/g, '');
      expect(fresh).not.toBe(recovery);
      await p.getByRole('button', { name: 'I have saved the code, continue' }).click();
      await p.waitForURL((u) => u.href.startsWith(callback()));
      expect(new URL(p.url()).searchParams.get('code')).toBeTruthy();
    } finally {
      await context.close();
    }
  });

  test('a forged CSRF token is refused with 403', async ({ page, mgmt }) => {
    const app = await mgmt.createClient({ callbacks: [callback()] });
    const user = await mgmt.createUser();
    await page.goto(authorizeUrl(app.client_id, pkce()));
    await page.locator('input[name=csrf]').evaluate((el) => { el.value = 'forged'; });
    await page.getByLabel('Email address').fill(user.email);
    await page.getByLabel('Password').fill(user.password);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/u/login') && r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Continue' }).click(),
    ]);
    expect(response.status()).toBe(403);
    await expect(page.getByRole('alert')).toContainText('This form has expired or did not come from this page.');
    await checkPage(page, 'csrf refused');
  });

  test('a foreign redirect_uri gets an error page, never a redirect', async ({ page, mgmt }) => {
    const app = await mgmt.createClient({ callbacks: [callback()] });
    const response = await page.goto(authorizeUrl(app.client_id, { ...pkce(), redirectUri: 'https://evil.example/cb' }));
    expect(response.status()).toBe(400);
    expect(new URL(page.url()).origin).toBe(baseUrl());
    await expect(page.getByRole('alert')).toContainText('(redirect_uri) is not allowed');
    await checkPage(page, 'foreign redirect_uri');
  });

  test('an enrollment ticket: continue, phone, code, recovery code, done', async ({ page, mgmt }) => {
    await mgmt.enablePhoneMfa({ messageTypes: ['sms'] });
    await mgmt.setFactor('recovery-code', true);
    const user = await mgmt.createUser();
    const ticket = await mgmt.post('/guardian/enrollments/ticket', { user_id: user.user_id });
    const url = new URL(ticket.ticket_url);
    await page.goto(url.pathname + url.search);
    await expect(page).toHaveURL(/\/u\/ticket$/);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Set up phone verification');
    await checkPage(page, 'ticket 1 intro');
    await page.getByRole('button', { name: 'Continue' }).click();

    await expect(page).toHaveURL(/\/u\/mfa\/enroll$/);
    await expect(page.getByRole('radio')).toHaveCount(0); // SMS only: no choice to make
    const phone = uniquePhone();
    const before = await mgmt.devInbox({ to: phone });
    await page.getByLabel('Phone number').fill(phone);
    await page.getByRole('button', { name: 'Continue' }).click();
    await expect(page).toHaveURL(/\/u\/mfa\/code$/);
    await expect(page.getByRole('button', { name: 'Call me instead' })).toHaveCount(0);
    await page.getByLabel('Enter the 6-digit code').fill(await codeFor(mgmt, phone, before, 'sms'));
    await page.getByRole('button', { name: 'Continue' }).click();
    await expect(page).toHaveURL(/\/u\/mfa\/recovery-code$/);
    await page.getByRole('button', { name: 'I have saved the code, continue' }).click();
    await expect(page).toHaveURL(/\/u\/done$/);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('All set');
    await checkPage(page, 'ticket 2 done');

    // The link works once.
    await page.context().clearCookies();
    await page.goto(url.pathname + url.search);
    await page.getByRole('button', { name: 'Continue' }).click();
    await expect(page.getByRole('alert')).toHaveText('This link is invalid, has expired or was already used.');
    await checkPage(page, 'ticket 3 used');
  });

  test('logout: an allowed returnTo is followed, another is refused', async ({ page, mgmt }) => {
    const app = await mgmt.createClient({ callbacks: [callback()], allowed_logout_urls: [`${baseUrl()}/e2e/bye`] });
    const bad = await page.goto(`/v2/logout?client_id=${app.client_id}&returnTo=${encodeURIComponent('https://evil.example/')}`);
    expect(bad.status()).toBe(400);
    expect(new URL(page.url()).origin).toBe(baseUrl());
    await checkPage(page, 'logout refused');
    await page.goto(`/v2/logout?client_id=${app.client_id}&returnTo=${encodeURIComponent(`${baseUrl()}/e2e/bye`)}`);
    await page.waitForURL(`${baseUrl()}/e2e/bye`);
    await page.goto('/v2/logout');
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('You are logged out');
    await checkPage(page, 'logged out');
  });

  test('sign-up: the login page links to it, the account is made and enrolls a phone', async ({ page, mgmt }) => {
    await mgmt.enablePhoneMfa({ messageTypes: ['sms'] });
    await mgmt.setFactor('recovery-code', true);
    const [conn] = await mgmt.request('GET', '/connections');
    await mgmt.request('PATCH', `/connections/${conn.id}`, { options: { disable_signup: false } });
    try {
      const app = await mgmt.createClient({ callbacks: [callback()] });
      await page.goto(authorizeUrl(app.client_id, pkce()));
      await page.getByRole('link', { name: 'Sign up' }).click();
      await expect(page).toHaveURL(/\/u\/signup$/);
      await expect(page.getByRole('heading', { level: 1 })).toHaveText('Sign up');
      await checkPage(page, 'signup 1 page');
      // On a 390 px phone the card keeps clear of the screen's edges.
      await page.setViewportSize({ width: 390, height: 800 });
      const box = await page.locator('main.card').boundingBox();
      expect(box.x).toBeGreaterThanOrEqual(8);
      expect(box.x + box.width).toBeLessThanOrEqual(390 - 8);
      await checkPage(page, 'signup 1 page 390px');
      await page.setViewportSize({ width: 1280, height: 800 });
      const email = uniqueEmail('signup');
      await page.getByLabel('Email address').fill(email);
      // Long enough for the field's minlength, but only lower case letters: the server refuses it.
      await page.getByLabel('Password').fill('weakpassword');
      await page.getByRole('button', { name: 'Create account' }).click();
      await expect(page.getByRole('alert')).toHaveText('This password is too weak.');
      await expect(page.getByLabel('Email address')).toHaveValue(email);
      await checkPage(page, 'signup 2 weak password');
      await page.getByLabel('Password').fill('E2e-Signup-Passw0rd!');
      await page.getByRole('button', { name: 'Create account' }).click();
      await expect(page).toHaveURL(/\/u\/mfa\/enroll$/);
      await expect(page.getByRole('heading', { level: 1 })).toHaveText('Secure your account');
      const phone = uniquePhone();
      const before = await mgmt.devInbox({ to: phone });
      await page.getByLabel('Country').selectOption('US');
      await page.getByLabel('Phone number').fill(phone.slice(2));
      await page.getByRole('button', { name: 'Continue' }).click();
      await expect(page).toHaveURL(/\/u\/mfa\/code$/);
      // Typed (or pasted) with a space, as a code is often shown: accepted.
      const code = await codeFor(mgmt, phone, before, 'sms');
      await page.getByLabel('Enter the 6-digit code').fill(`${code.slice(0, 3)} ${code.slice(3)}`);
      await page.getByRole('button', { name: 'Continue' }).click();
      await expect(page).toHaveURL(/\/u\/mfa\/recovery-code$/);
      await page.getByRole('button', { name: 'I have saved the code, continue' }).click();
      await page.waitForURL((u) => u.href.startsWith(callback()));
      expect(new URL(page.url()).searchParams.get('code')).toBeTruthy();
      const users = await mgmt.request('GET', `/users-by-email?email=${encodeURIComponent(email)}`);
      expect(users).toHaveLength(1);
    } finally {
      await mgmt.request('PATCH', `/connections/${conn.id}`, { options: { disable_signup: true } });
    }
  });

  test('the pages speak French and Spanish', async ({ page, mgmt }) => {
    const app = await mgmt.createClient({ callbacks: [callback()] });
    await page.goto(authorizeUrl(app.client_id, { ...pkce(), extra: { ui_locales: 'fr' } }));
    await expect(page.locator('html')).toHaveAttribute('lang', 'fr');
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Connexion');
    await checkPage(page, 'login fr');
    await page.goto(authorizeUrl(app.client_id, { ...pkce(), extra: { ui_locales: 'es' } }));
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Iniciar sesión');
    await checkPage(page, 'login es');
  });
});
