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
import { Browser, loginPages, management } from '../lib/callsign.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const domain = process.env.CALLSIGN_TEST_DOMAIN;
const issuer = `https://${domain}/`;
const creds = JSON.parse(readFileSync(process.env.CALLSIGN_TEST_BOOTSTRAP, 'utf8'));
const PHONE = '+14155550123';
const EMAIL = 'nextjs-sdk@example.com';
const PASSWORD = 'Str0ng-Passw0rd';
const api = management(issuer, creds);
const logIn = loginPages({ issuer, api, email: EMAIL, password: PASSWORD, phone: PHONE });

const freePort = () => new Promise((resolve, reject) => {
  const s = createServer().once('error', reject).listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

let client, base, next, nextLog = '';
before(async () => {
  const u = await api('POST', '/users', { connection: 'Username-Password-Authentication', email: EMAIL, password: PASSWORD });
  assert.equal(u.status, 201, JSON.stringify(u.body));
  assert.equal((await api('PUT', '/guardian/factors/sms', { enabled: true })).status, 200);
  assert.equal((await api('PUT', '/guardian/policies', ['all-applications'])).status, 200);

  const port = await freePort();
  base = `http://localhost:${port}`;
  const c = await api('POST', '/clients', {
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
  const logs = await api('GET', `/logs?q=${encodeURIComponent('type:sertft')}`);
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
  const logs = await api('GET', `/logs?q=${encodeURIComponent('type:srrt')}`);
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
