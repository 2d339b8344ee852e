// @auth0/auth0-spa-js, unmodified from npm, in Chromium against Callsign over HTTPS with the phone factor on.
// One browser context for every step (the SSO cookie carries over), in order:
//   login with redirect (password, phone enrollment, SMS code from the dev inbox), the user and a token;
//   silent authentication in a hidden iframe (prompt=none, response_mode=web_message);
//   refresh tokens with rotation (useRefreshTokens, no iframe fallback);
//   an origin listed in no web_origins: no CORS, no web_message answer;
//   logout back to the app, after which silent authentication answers login_required.
const { readFileSync } = require('node:fs');
const { randomBytes } = require('node:crypto');
const { test, expect } = require('@playwright/test');

const domain = process.env.CALLSIGN_SPA_DOMAIN;
const issuer = `https://${domain}/`;
const APP = process.env.CALLSIGN_SPA_APP; // the app's origin, in web_origins
const OTHER = process.env.CALLSIGN_SPA_OTHER_APP; // an origin listed nowhere
const API = 'https://api.spa-test.example/';
const EMAIL = `spa-${randomBytes(4).toString('hex')}@example.com`;
const PASSWORD = 'Str0ng-Passw0rd';
const PHONE = `+1415555${String(randomBytes(2).readUInt16BE() % 10000).padStart(4, '0')}`;

// ---- The Management API, from Node, with the bootstrap credentials.
let admin;
async function mgmtToken() {
  const creds = JSON.parse(readFileSync(process.env.CALLSIGN_SPA_BOOTSTRAP, 'utf8'));
  const r = await fetch(`${issuer}oauth/token`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', client_id: creds.client_id, client_secret: creds.client_secret, audience: creds.audience }),
  });
  expect(r.status).toBe(200);
  return (await r.json()).access_token;
}
async function api(method, path, body) {
  const r = await fetch(`${issuer}api/v2${path}`, {
    method, headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

const claims = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));

// ---- The browser: one context, every request it makes recorded (page, iframes and the SDK's worker).
let context;
let page;
let clientId;
const requests = [];
function record(ctx) {
  ctx.on('request', (r) => requests.push(r));
}
const since = (mark) => requests.slice(mark);
const isAuthorize = (r) => r.url().startsWith(`${issuer}authorize?`);
const isToken = (r) => r.url() === `${issuer}oauth/token` && r.method() === 'POST';
const form = (r) => {
  const body = r.postData() || '';
  return (r.headers()['content-type'] || '').includes('json') ? JSON.parse(body) : Object.fromEntries(new URLSearchParams(body));
};

/** The SDK client's options: the app at `origin`, its callback the origin's root. */
function options(origin, extra = {}) {
  return {
    domain, clientId,
    authorizationParams: { redirect_uri: `${origin}/`, audience: API, scope: 'openid profile email' },
    ...extra,
  };
}
/** Calls window.app.<fn>(...args) in the page (see app/app.js): { ok, value } or { ok: false, error }. */
const call = (p, fn, ...args) => p.evaluate(([f, a]) => window.app[f](...a), [fn, args]);
async function create(p, opts) {
  const r = await call(p, 'create', opts);
  expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
}
/** loginWithRedirect: the page leaves for Callsign's /authorize (the call does not come back); its request. */
async function loginWithRedirect(p) {
  const [authorize] = await Promise.all([p.waitForRequest(isAuthorize), p.evaluate(() => { window.app.loginWithRedirect(); })]);
  return authorize;
}
/** Back on the app with ?code=&state=, the SDK's handleRedirectCallback. */
async function handleRedirectCallback(p, opts) {
  expect(new URL(p.url()).searchParams.get('code')).toBeTruthy();
  await create(p, opts);
  return call(p, 'handleRedirectCallback');
}

test.describe.configure({ mode: 'serial' });

test.beforeAll(async ({ browser }) => {
  admin = await mgmtToken();
  const u = await api('POST', '/users', { connection: 'Username-Password-Authentication', email: EMAIL, password: PASSWORD });
  expect(u.status, JSON.stringify(u.body)).toBe(201);
  expect((await api('PUT', '/guardian/factors/sms', { enabled: true })).status).toBe(200);
  expect((await api('PUT', '/guardian/policies', ['all-applications'])).status).toBe(200);
  const rs = await api('POST', '/resource-servers', { name: 'SPA test API', identifier: API, allow_offline_access: true });
  expect(rs.status, JSON.stringify(rs.body)).toBe(201);
  // The second origin is among the callbacks (so that a login there comes back with a code) but in no web_origins.
  const c = await api('POST', '/clients', {
    name: 'spa-js app', app_type: 'spa',
    callbacks: [`${APP}/`, `${OTHER}/`], allowed_logout_urls: [`${APP}/`],
    web_origins: [APP], allowed_origins: [APP],
    grant_types: ['authorization_code', 'refresh_token'],
  });
  expect(c.status, JSON.stringify(c.body)).toBe(201);
  expect(c.body).toMatchObject({ token_endpoint_auth_method: 'none' });
  clientId = c.body.client_id;
  context = await browser.newContext({ ignoreHTTPSErrors: true });
  record(context);
  page = await context.newPage();
});

test.afterAll(async () => { await context?.close(); });

test('loginWithRedirect: password, phone enrollment, SMS code, back to the app; getUser and getTokenSilently', async () => {
  await page.goto(`${APP}/`);
  await create(page, options(APP));
  const authorize = new URL((await loginWithRedirect(page)).url());
  expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
  expect(authorize.searchParams.get('response_mode')).toBe('query');

  await expect(page).toHaveURL(/\/u\/login$/);
  await page.getByLabel('Email address').fill(EMAIL);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Continue' }).click();
  await expect(page).toHaveURL(/\/u\/mfa\/enroll$/);
  await page.getByLabel('Country').selectOption('US');
  await page.getByLabel('Phone number').fill(PHONE.slice(2)); // SMS is the only channel on: no choice shown
  await page.getByRole('button', { name: 'Continue' }).click();
  await expect(page).toHaveURL(/\/u\/mfa\/code$/);
  // The SMS goes out from a delivery job just after the page: wait for it (the only one to this phone).
  let messages = [];
  for (let i = 0; i < 100 && messages.length === 0; i++) {
    if (i > 0) await new Promise((res) => setTimeout(res, 100));
    const inbox = await api('GET', `/dev-inbox?to=${encodeURIComponent(PHONE)}`);
    expect(inbox.status, JSON.stringify(inbox.body)).toBe(200);
    messages = Array.isArray(inbox.body) ? inbox.body : inbox.body.messages;
  }
  expect(messages.length, 'an SMS in the dev inbox').toBeGreaterThan(0);
  const code = messages[0].text.match(/\d{6}/)[0];
  await page.getByLabel('Enter the 6-digit code').fill(code);
  const mark = requests.length;
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL((u) => u.href.startsWith(`${APP}/?`));

  const back = await handleRedirectCallback(page, options(APP));
  expect(back, JSON.stringify(back)).toMatchObject({ ok: true });
  // The code exchange, from the page (CORS): the code, the PKCE verifier, no secret.
  const exchange = since(mark).filter(isToken).map(form).find((b) => b.grant_type === 'authorization_code');
  expect(exchange).toMatchObject({ client_id: clientId, redirect_uri: `${APP}/` });
  expect(exchange.code_verifier).toBeTruthy();
  expect(exchange.client_secret).toBeUndefined();

  const user = await call(page, 'getUser');
  expect(user.value).toMatchObject({ email: EMAIL });
  expect(await call(page, 'isAuthenticated')).toEqual({ ok: true, value: true });
  const token = await call(page, 'getTokenSilently');
  expect(token.ok, JSON.stringify(token)).toBe(true);
  expect(claims(token.value)).toMatchObject({ iss: issuer, aud: expect.arrayContaining([API]) });
  // The app's origin may read Callsign's answers: /userinfo with the access token.
  const info = await page.evaluate(async ([u, t]) => (await fetch(u, { headers: { authorization: `Bearer ${t}` } })).json(), [`${issuer}userinfo`, token.value]);
  expect(info).toMatchObject({ email: EMAIL });
});

test('getTokenSilently (no refresh tokens, cacheMode off): a hidden iframe with prompt=none&response_mode=web_message', async () => {
  await create(page, options(APP, { useRefreshTokens: false }));
  const first = await call(page, 'getTokenSilently', { cacheMode: 'off' });
  const mark = requests.length;
  const again = await call(page, 'getTokenSilently', { cacheMode: 'off' });
  expect(first.ok && again.ok, JSON.stringify([first, again])).toBe(true);
  // (Two tokens issued in the same second may be the same JWT: the requests below show a new one was asked for.)
  expect(claims(again.value).sub).toBe(claims(first.value).sub);

  const silent = since(mark).filter(isAuthorize);
  expect(silent).toHaveLength(1);
  const q = new URL(silent[0].url()).searchParams;
  expect(q.get('prompt')).toBe('none');
  expect(q.get('response_mode')).toBe('web_message');
  expect(silent[0].frame()).not.toBe(page.mainFrame()); // in the SDK's iframe
  expect((await silent[0].response()).status()).toBe(200);
  const exchange = since(mark).filter(isToken).map(form);
  expect(exchange).toHaveLength(1);
  expect(exchange[0]).toMatchObject({ grant_type: 'authorization_code', client_id: clientId });
});

test('useRefreshTokens: getTokenSilently posts grant_type=refresh_token, twice, with a new refresh token each time', async () => {
  const opts = options(APP, { useRefreshTokens: true, useRefreshTokensFallback: false });
  await create(page, opts);
  // The SSO session: Callsign sends the code straight back.
  await loginWithRedirect(page);
  await page.waitForURL((u) => u.href.startsWith(`${APP}/?`));
  const back = await handleRedirectCallback(page, opts);
  expect(back, JSON.stringify(back)).toMatchObject({ ok: true });

  const mark = requests.length;
  const t1 = await call(page, 'getTokenSilently', { cacheMode: 'off' });
  const t2 = await call(page, 'getTokenSilently', { cacheMode: 'off' });
  expect(t1.ok && t2.ok, JSON.stringify([t1, t2])).toBe(true);
  expect(since(mark).filter(isAuthorize)).toHaveLength(0); // no iframe
  const posts = since(mark).filter(isToken); // from the SDK's Web Worker (it keeps the refresh token)
  expect(posts).toHaveLength(2);
  for (const r of posts) expect((await r.response()).status()).toBe(200);
  const refreshes = posts.map(form);
  for (const b of refreshes) expect(b).toMatchObject({ grant_type: 'refresh_token', client_id: clientId });
  expect(refreshes[0].refresh_token).toBeTruthy();
  expect(refreshes[1].refresh_token).not.toBe(refreshes[0].refresh_token); // rotated
  // The first refresh token was spent by its use.
  const reuse = await fetch(`${issuer}oauth/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', client_id: clientId, refresh_token: refreshes[0].refresh_token }),
  });
  expect(reuse.status).toBe(403);
  expect((await reuse.json()).error).toBe('invalid_grant');
});

test('an origin in no web_origins: no CORS for it (the code exchange fails), no web_message answer (silent auth times out)', async () => {
  const other = await context.newPage();
  try {
    await other.goto(`${OTHER}/`);
    const opts = options(OTHER, { authorizeTimeoutInSeconds: 2 });
    await create(other, opts);
    let mark = requests.length;
    const started = Date.now();
    const silent = await call(other, 'getTokenSilently', { cacheMode: 'off' });
    expect(silent.ok, JSON.stringify(silent)).toBe(false);
    expect(silent.error.error).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(8_000);
    const frames = since(mark).filter(isAuthorize);
    expect(frames.length).toBeGreaterThan(0);
    expect(new URL(frames.at(-1).url()).searchParams.get('response_mode')).toBe('web_message');
    expect((await frames.at(-1).response()).status()).toBe(400); // an error page, nothing posted

    // A login there (the SSO session sends the code straight back), then the SDK's code exchange: no CORS.
    await loginWithRedirect(other);
    await other.waitForURL((u) => u.href.startsWith(`${OTHER}/?`));
    mark = requests.length;
    const back = await handleRedirectCallback(other, opts);
    expect(back.ok, JSON.stringify(back)).toBe(false);
    expect(back.error.message).toMatch(/Failed to fetch/);
    expect(since(mark).filter(isToken).length).toBeGreaterThan(0);
    // The same plain call: refused by the browser here, readable from the app's origin.
    const probe = [`${issuer}oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }];
    expect((await call(other, 'fetchStatus', ...probe)).ok).toBe(false);
    expect((await call(page, 'fetchStatus', ...probe)).ok).toBe(true);
    // What the browser saw: the preflight answers no CORS headers for this origin, and does for the app's.
    const preflight = (origin) => fetch(`${issuer}oauth/token`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,auth0-client' } });
    const refused = await preflight(OTHER);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    const allowed = await preflight(APP);
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(APP);
  } finally {
    await other.close();
  }
});

test('logout({ returnTo }) comes back to the app; then silent authentication answers login_required', async () => {
  await create(page, options(APP));
  const [logout] = await Promise.all([
    page.waitForRequest((r) => r.url().startsWith(`${issuer}v2/logout?`)),
    page.waitForEvent('framenavigated', (f) => f === page.mainFrame() && f.url() === `${APP}/`),
    page.evaluate((url) => { window.app.logout({ logoutParams: { returnTo: url } }); }, `${APP}/`),
  ]);
  expect(Object.fromEntries(new URL(logout.url()).searchParams)).toMatchObject({ client_id: clientId, returnTo: `${APP}/` });
  expect((await logout.response()).status()).toBe(302);
  await page.waitForLoadState('load');
  await create(page, options(APP));
  expect(await call(page, 'isAuthenticated')).toEqual({ ok: true, value: false });
  const mark = requests.length;
  const silent = await call(page, 'getTokenSilently', { cacheMode: 'off' });
  expect(silent.ok, JSON.stringify(silent)).toBe(false);
  expect(silent.error.error).toBe('login_required');
  const frames = since(mark).filter(isAuthorize);
  expect(frames).toHaveLength(1);
  expect(new URL(frames[0].url()).searchParams.get('prompt')).toBe('none');
});
