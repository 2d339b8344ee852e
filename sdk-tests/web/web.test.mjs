// Auth0's web middlewares, unmodified, against a real Callsign over HTTPS with the phone factor on: a login through
// the login pages (SMS code from the dev inbox), the way a browser does it (cookies and forms by hand, no script).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import express from 'express';
import eoc from 'express-openid-connect';
import Auth0Strategy from 'passport-auth0';

const domain = process.env.CALLSIGN_TEST_DOMAIN;
const issuer = `https://${domain}/`;
const creds = JSON.parse(readFileSync(process.env.CALLSIGN_TEST_BOOTSTRAP, 'utf8'));
const PHONE = '+14155550123';
const EMAIL = 'web-sdk@example.com';
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

let admin;
test.before(async () => {
  admin = await mgmtToken();
  const u = await api(admin, 'POST', '/users', { connection: 'Username-Password-Authentication', email: EMAIL, password: PASSWORD });
  assert.equal(u.status, 201, JSON.stringify(u.body));
  assert.equal((await api(admin, 'PUT', '/guardian/factors/sms', { enabled: true })).status, 200);
  assert.equal((await api(admin, 'PUT', '/guardian/policies', ['all-applications'])).status, 200);
});

/** The code of the next SMS in the dev inbox: a delivery job sends it just after the page that asked for it, so
 * wait for a message not seen before (newest first). */
const seen = new Set();
async function newCode() {
  for (let i = 0; i < 100; i++) {
    const inbox = await api(admin, 'GET', `/dev-inbox?to=${encodeURIComponent(PHONE)}`);
    assert.equal(inbox.status, 200, JSON.stringify(inbox.body));
    const messages = Array.isArray(inbox.body) ? inbox.body : inbox.body.messages;
    const fresh = messages.filter((m) => !seen.has(m.id));
    if (fresh.length > 0) {
      for (const m of messages) seen.add(m.id);
      return fresh[0].text.match(/\d{6}/)[0];
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error('no new SMS in the dev inbox after 10 s');
}

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
  const code = await newCode();
  return b.go(`${issuer}u/mfa/code`, { method: 'POST', form: { code, csrf: field(p.body, 'csrf') } });
}

test('express-openid-connect with its default login (id_token by form_post) logs in, reads the user and logs out at Callsign', async () => {
  // The port first (the callback URL names it), then the app with its settings.
  let handler = (_req, res) => res.status(503).end();
  const server = await new Promise((resolve) => { const s = express().use((req, res, next) => handler(req, res, next)).listen(0, '127.0.0.1', () => resolve(s)); });
  const base = `http://127.0.0.1:${server.address().port}`;
  const c = await api(admin, 'POST', '/clients', { name: 'Express app', app_type: 'regular_web', callbacks: [`${base}/callback`], allowed_logout_urls: [base, `${base}/`] });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const app = express();
  app.use(eoc.auth({ issuerBaseURL: issuer, baseURL: base, clientID: c.body.client_id, secret: 'a-long-session-secret-of-at-least-32-characters', authRequired: false, idpLogout: true }));
  app.get('/me', eoc.requiresAuth(), (req, res) => res.json(req.oidc.user));
  handler = app;
  try {
    const b = new Browser();
    let r = await b.go(`${base}/login`);
    assert.equal(r.status, 302, r.body);
    const authorize = new URL(r.location);
    assert.equal(authorize.searchParams.get('response_type'), 'id_token');
    assert.equal(authorize.searchParams.get('response_mode'), 'form_post');
    r = await logIn(b, r.location);
    // The form_post page: its form posts the ID token to the app's callback.
    assert.equal(r.status, 200, r.body);
    assert.match(r.body, new RegExp(`action="${base}/callback"`));
    r = await b.go(`${base}/callback`, { method: 'POST', form: { id_token: field(r.body, 'id_token'), state: field(r.body, 'state') } });
    assert.equal(r.status, 302, r.body);
    r = await b.go(`${base}/me`);
    assert.equal(r.status, 200, r.body);
    const user = JSON.parse(r.body);
    assert.equal(user.email, EMAIL);
    assert.deepEqual(user.amr, ['pwd', 'mfa']);
    r = await b.go(`${base}/logout`);
    assert.equal(r.status, 302);
    assert.ok(r.location.startsWith(issuer), r.location);
    r = await b.go(r.location);
    assert.equal(r.status, 302, r.body);
    assert.equal(new URL(r.location).origin, base);
    r = await b.go(`${base}/me`);
    assert.notEqual(r.status, 200);
  } finally {
    server.close();
  }
});

test('passport-auth0 reads the profile with the token in the query', async () => {
  const c = await api(admin, 'POST', '/clients', { name: 'Passport app', app_type: 'regular_web', callbacks: ['http://127.0.0.1/cb'], grant_types: ['authorization_code', 'password'] });
  assert.equal(c.status, 201);
  // A user access token (MFA is on, so log in through the pages with the code flow).
  const b = new Browser();
  const params = new URLSearchParams({ response_type: 'code', client_id: c.body.client_id, redirect_uri: 'http://127.0.0.1/cb', scope: 'openid profile email', state: 's' });
  const r = await logIn(b, `${issuer}authorize?${params}`);
  assert.equal(r.status, 303, r.body);
  const code = new URL(r.location).searchParams.get('code');
  const strategy = new Auth0Strategy({ domain, clientID: c.body.client_id, clientSecret: c.body.client_secret, callbackURL: 'http://127.0.0.1/cb' }, () => {});
  // The strategy's own OAuth client exchanges the code and reads the profile, as it does in its callback route.
  const { accessToken } = await new Promise((resolve, reject) => strategy._oauth2.getOAuthAccessToken(code, { grant_type: 'authorization_code', redirect_uri: 'http://127.0.0.1/cb' },
    (err, accessToken) => (err ? reject(err) : resolve({ accessToken }))));
  const profile = await new Promise((resolve, reject) => strategy.userProfile(accessToken, (err, p) => (err ? reject(err) : resolve(p))));
  assert.equal(profile.emails[0].value, EMAIL);
  assert.ok(profile.id.length > 0);
});
