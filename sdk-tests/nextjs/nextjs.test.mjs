// @auth0/nextjs-auth0 (v4), unmodified, in a minimal Next.js App Router app (proxy.ts, lib/auth0.ts configured by
// the environment only), against a real Callsign at https://<a loopback hostname>/ with the phone factor on. The login pages are
// driven the way a browser does it (cookies and forms by hand, no script), the SMS code read from the dev inbox.
// Needs: CALLSIGN_TEST_BOOTSTRAP (the bootstrap credentials), NODE_EXTRA_CA_CERTS (Callsign's test certificate),
// and the app already built (`next build`) in this folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const domain = process.env.CALLSIGN_TEST_DOMAIN;
const issuer = `https://${domain}/`;
const creds = JSON.parse(readFileSync(process.env.CALLSIGN_TEST_BOOTSTRAP, 'utf8'));
const PHONE = '+14155550123';
const EMAIL = 'nextjs-sdk@example.com';
const PASSWORD = 'Str0ng-Passw0rd';

async function mgmtToken() {
  const r = await fetch(`${issuer}oauth/token`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', client_id: creds.client_id, client_secret: creds.client_secret, audience: creds.audience }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).access_token;
}

async function api(token, method, path, body) {
  const r = await fetch(`${issuer}api/v2${path}`, {
    method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

/** A cookie jar per host, and no redirects followed. */
class Browser {
  constructor() { this.jars = new Map(); }
  jar(url) { const h = new URL(url).host; if (!this.jars.has(h)) this.jars.set(h, new Map()); return this.jars.get(h); }
  async go(url, { method = 'GET', form } = {}) {
    const jar = this.jar(url);
    const headers = { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') };
    let body;
    if (form) { headers['content-type'] = 'application/x-www-form-urlencoded'; body = new URLSearchParams(form).toString(); }
    const r = await fetch(url, { method, headers, body, redirect: 'manual' });
    for (const c of r.headers.getSetCookie()) {
      const [pair] = c.split(';'); const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim(); const value = pair.slice(i + 1).trim();
      if (/Max-Age=0/i.test(c) || /Expires=Thu, 01 Jan 1970/i.test(c)) jar.delete(name); else jar.set(name, value);
    }
    const location = r.headers.get('location');
    return { status: r.status, location: location && new URL(location, url).toString(), body: await r.text(), url };
  }
}

const unescape = (s) => s.replaceAll('&quot;', '"').replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&#39;', "'").replaceAll('&amp;', '&');
const field = (html, name) => { const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`)); return m && unescape(m[1]); };

/** The login pages from `/authorize` on: password, then the phone (enrolled the first time), then the code. */
async function logIn(b, authorizeUrl) {
  let r = await b.go(authorizeUrl);
  assert.equal(r.status, 302, r.body);
  r = await b.go(r.location);
  assert.equal(r.status, 200, r.body);
  r = await b.go(`${issuer}u/login`, { method: 'POST', form: { email: EMAIL, password: PASSWORD, csrf: field(r.body, 'csrf') } });
  assert.equal(r.status, 303, r.body);
  if (r.location.endsWith('/u/mfa/enroll')) {
    const p = await b.go(r.location);
    r = await b.go(`${issuer}u/mfa/enroll`, { method: 'POST', form: { country: 'US', phone: PHONE.slice(2), channel: 'sms', csrf: field(p.body, 'csrf') } });
    assert.equal(r.status, 303, r.body);
  }
  assert.ok(r.location.endsWith('/u/mfa/code'), r.location);
  const p = await b.go(r.location);
  // The SMS goes out from a delivery job: wait for it in the dev inbox.
  let messages = [];
  for (let i = 0; i < 50 && messages.length === 0; i++) {
    if (i > 0) await new Promise((res) => setTimeout(res, 100));
    const inbox = await api(admin, 'GET', `/dev-inbox?to=${encodeURIComponent(PHONE)}`);
    assert.equal(inbox.status, 200, JSON.stringify(inbox.body));
    messages = Array.isArray(inbox.body) ? inbox.body : inbox.body.messages;
  }
  assert.ok(messages.length > 0, 'no SMS in the dev inbox');
  const code = messages[0].text.match(/\d{6}/)[0];
  return b.go(`${issuer}u/mfa/code`, { method: 'POST', form: { code, csrf: field(p.body, 'csrf') } });
}

const freePort = () => new Promise((resolve, reject) => {
  const s = createServer().once('error', reject).listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

let admin, client, base, next, nextLog = '';
before(async () => {
  admin = await mgmtToken();
  const u = await api(admin, 'POST', '/users', { connection: 'Username-Password-Authentication', email: EMAIL, password: PASSWORD });
  assert.equal(u.status, 201, JSON.stringify(u.body));
  assert.equal((await api(admin, 'PUT', '/guardian/factors/sms', { enabled: true })).status, 200);
  assert.equal((await api(admin, 'PUT', '/guardian/policies', ['all-applications'])).status, 200);

  const port = await freePort();
  base = `http://localhost:${port}`;
  const c = await api(admin, 'POST', '/clients', {
    name: 'Next.js app', app_type: 'regular_web', callbacks: [`${base}/auth/callback`], allowed_logout_urls: [base],
    grant_types: ['authorization_code', 'refresh_token'],
  });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  client = c.body;

  // The app, with the SDK's settings in the environment only (the default scope holds offline_access).
  const env = {
    ...process.env, NEXT_TELEMETRY_DISABLED: '1', NODE_ENV: 'production',
    AUTH0_DOMAIN: domain, AUTH0_CLIENT_ID: client.client_id, AUTH0_CLIENT_SECRET: client.client_secret,
    AUTH0_SECRET: randomBytes(32).toString('hex'), APP_BASE_URL: base,
  };
  const mode = process.env.NEXTJS_MODE === 'dev' ? 'dev' : 'start';
  next = spawn(process.execPath, [`${here}node_modules/next/dist/bin/next`, mode, '-p', String(port), '-H', '127.0.0.1'],
    { cwd: here, env, stdio: ['ignore', 'pipe', 'pipe'] });
  next.stdout.on('data', (d) => { nextLog += d; });
  next.stderr.on('data', (d) => { nextLog += d; });
  const t0 = Date.now();
  for (;;) {
    assert.equal(next.exitCode, null, `next ${mode} exited:\n${nextLog}`);
    let r;
    try { r = await fetch(`${base}/api/me`); } catch { /* not up yet */ }
    if (r) { assert.equal(r.status, 401, `${await r.text()}\n${nextLog}`); break; }
    assert.ok(Date.now() - t0 < 120_000, `next ${mode} did not start:\n${nextLog}`);
    await new Promise((res) => setTimeout(res, 200));
  }
});

after(async () => {
  if (next && next.exitCode === null) { next.kill('SIGTERM'); await new Promise((r) => next.once('exit', r)); }
  if (process.env.NEXTJS_SHOW_LOG) console.log(nextLog);
});

const b = new Browser();
let tokens; // the first /api/token answer

test('/auth/login goes through the login pages (password, phone, SMS code) and /auth/callback opens a session', async () => {
  let r = await b.go(`${base}/auth/login`);
  assert.equal(r.status, 307, r.body);
  const authorize = new URL(r.location);
  assert.equal(authorize.origin + authorize.pathname, `${issuer}authorize`);
  assert.equal(authorize.searchParams.get('response_type'), 'code');
  assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(authorize.searchParams.get('redirect_uri'), `${base}/auth/callback`);
  assert.ok(authorize.searchParams.get('scope').split(' ').includes('offline_access'));
  r = await logIn(b, r.location);
  assert.equal(r.status, 303, r.body);
  const cb = new URL(r.location);
  assert.equal(cb.origin + cb.pathname, `${base}/auth/callback`);
  r = await b.go(r.location);
  assert.ok([302, 307].includes(r.status), `${r.status} ${r.body}\n${nextLog}`);
  assert.equal(r.location, `${base}/`);
  assert.ok(b.jar(base).has('__session'), [...b.jar(base).keys()].join(','));
  r = await b.go(`${base}/`);
  assert.equal(r.status, 200);
  assert.match(r.body, new RegExp(`Welcome, (<!-- -->)?${EMAIL}`));
});

test('a route handler reads the session with getSession(), and /auth/profile answers the user', async () => {
  let r = await b.go(`${base}/api/me`);
  assert.equal(r.status, 200, r.body);
  const me = JSON.parse(r.body);
  assert.equal(me.email, EMAIL);
  assert.match(me.sub, /^auth0\|/);
  r = await b.go(`${base}/auth/profile`);
  assert.equal(r.status, 200, r.body);
  const profile = JSON.parse(r.body);
  assert.equal(profile.email, EMAIL);
  assert.equal(profile.sub, me.sub);
});

test('/auth/access-token and getAccessToken() give the access token; getAccessToken({ refresh: true }) refreshes it', async () => {
  let r = await b.go(`${base}/auth/access-token`);
  assert.equal(r.status, 200, r.body);
  const fromEndpoint = JSON.parse(r.body);
  assert.ok(fromEndpoint.token.split('.').length === 3, r.body);
  r = await b.go(`${base}/api/token`);
  assert.equal(r.status, 200, r.body);
  tokens = JSON.parse(r.body);
  assert.equal(tokens.token, fromEndpoint.token);
  assert.ok(tokens.refreshToken, 'the session holds a refresh token (offline_access)');
  const claims = JSON.parse(Buffer.from(tokens.token.split('.')[1], 'base64url'));
  assert.equal(claims.iss, issuer);

  await new Promise((res) => setTimeout(res, 1100)); // a new iat, so the new token cannot be byte-identical
  r = await b.go(`${base}/api/token?refresh=1`);
  assert.equal(r.status, 200, `${r.body}\n${nextLog}`);
  const refreshed = JSON.parse(r.body);
  assert.notEqual(refreshed.token, tokens.token, 'a new access token');
  // The new token set is saved in the session cookie: the next read answers the new token without a refresh, and
  // the refresh token was rotated.
  r = await b.go(`${base}/api/token`);
  assert.equal(r.status, 200, r.body);
  const again = JSON.parse(r.body);
  assert.equal(again.token, refreshed.token);
  assert.notEqual(again.refreshToken, tokens.refreshToken, 'Callsign rotates the refresh token');
  tokens = again;
  const logs = await api(admin, 'GET', `/logs?q=${encodeURIComponent('type:sertft')}`);
  assert.equal(logs.status, 200, JSON.stringify(logs.body));
  assert.ok(logs.body.some((l) => l.client_id === client.client_id), JSON.stringify(logs.body));
});

test('/auth/logout revokes the refresh token (POST /oauth/revoke), logs out at Callsign and comes back', async () => {
  let r = await b.go(`${base}/auth/logout`);
  assert.ok([302, 307].includes(r.status), r.body);
  const logout = new URL(r.location);
  assert.equal(logout.origin + logout.pathname, `${issuer}oidc/logout`);
  assert.equal(logout.searchParams.get('post_logout_redirect_uri'), base);
  assert.ok(!b.jar(base).has('__session'), 'the session cookie is cleared');
  r = await b.go(r.location);
  assert.equal(r.status, 302, r.body);
  assert.equal(new URL(r.location).origin, base);
  r = await b.go(r.location);
  assert.equal(r.status, 200);
  assert.match(r.body, /Log in/);
  r = await b.go(`${base}/api/me`);
  assert.equal(r.status, 401);

  // The SDK revoked the session's refresh token: Callsign logged `srrt` for this application, and the token no
  // longer works (logging out at Callsign alone does not revoke refresh tokens).
  const logs = await api(admin, 'GET', `/logs?q=${encodeURIComponent('type:srrt')}`);
  assert.equal(logs.status, 200, JSON.stringify(logs.body));
  assert.equal(logs.body.filter((l) => l.client_id === client.client_id).length, 1, JSON.stringify(logs.body));
  const t = await fetch(`${issuer}oauth/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refreshToken, client_id: client.client_id, client_secret: client.client_secret }),
  });
  const body = await t.json();
  assert.equal(body.error, 'invalid_grant', JSON.stringify(body));
  assert.ok([400, 403].includes(t.status), `${t.status}`);
});
