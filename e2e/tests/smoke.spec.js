// The harness itself: Chromium reaches the server, screenshots are kept, axe runs, and the Management helpers
// set up phone MFA and read a code from the dev inbox.
const { test, expect } = require('../lib/fixtures');
const { oauthToken, uniquePhone, baseUrl } = require('../lib/mgmt');
const { seriousViolations, expectNoSeriousViolations } = require('../lib/a11y');

test('Chromium opens the discovery document', async ({ page, shot }) => {
  const res = await page.goto('/.well-known/openid-configuration');
  expect(res.status()).toBe(200);
  expect(res.headers()['content-type']).toContain('application/json');
  const doc = await res.json();
  expect(doc.issuer).toBe(`${baseUrl()}/`);
  expect(doc.token_endpoint).toBe(`${baseUrl()}/oauth/token`);
  await shot('openid configuration');
});

test('axe reports serious violations, and none on a clean page', async ({ page, shot }) => {
  await page.setContent('<html lang="en"><head><title>bad</title></head><body><main><img src="data:,">' +
    '<button></button></main></body></html>');
  const ids = (await seriousViolations(page)).map((v) => v.id).sort();
  expect(ids).toEqual(['button-name', 'image-alt']);

  await page.setContent('<html lang="en"><head><title>Log in</title></head><body><main><h1>Log in</h1>' +
    '<form><label for="e">Email</label><input id="e" type="email" autocomplete="email">' +
    '<button type="submit">Continue</button></form></main></body></html>');
  await expectNoSeriousViolations(page, { name: 'clean page' });
  await shot('clean page');
});

test('Management helpers: phone MFA on, a user enrolls by SMS, the code is in the dev inbox', async ({ mgmt }) => {
  const app = await mgmt.createClient({ callbacks: ['http://127.0.0.1/callback'] });
  expect(app.client_secret).toBeTruthy();
  const user = await mgmt.createUser();
  expect(user.user_id).toMatch(/^auth0\|/);
  await mgmt.enablePhoneMfa();
  try {
    const login = await oauthToken({
      grant_type: 'password', client_id: app.client_id, client_secret: app.client_secret,
      username: user.email, password: user.password, scope: 'openid',
    }).then(() => { throw new Error('expected mfa_required'); }, (e) => e);
    expect(login.status).toBe(403);
    expect(login.body.error).toBe('mfa_required');

    const phone = uniquePhone();
    const before = await mgmt.devInbox({ to: phone });
    const assoc = await fetch(`${baseUrl()}/mfa/associate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${login.body.mfa_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ authenticator_types: ['oob'], oob_channels: ['sms'], phone_number: phone }),
    }).then((r) => r.json());
    expect(assoc.oob_code).toBeTruthy();

    const msg = await mgmt.waitForMessage(phone, { after: before });
    expect(msg).toMatchObject({ to: phone, channel: 'sms' });
    const code = await mgmt.waitForCode(phone, { after: before });
    expect(code).toMatch(/^\d{6}$/);

    const tokens = await oauthToken({
      grant_type: 'http://auth0.com/oauth/grant-type/mfa-oob', client_id: app.client_id,
      client_secret: app.client_secret, mfa_token: login.body.mfa_token, oob_code: assoc.oob_code, binding_code: code,
    });
    expect(tokens.id_token).toBeTruthy();
  } finally {
    await mgmt.resetGuardian();
  }
});
