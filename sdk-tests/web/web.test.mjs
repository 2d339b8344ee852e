// Auth0's web middlewares, unmodified, against a real Callsign over HTTPS with the phone factor on: a login through
// the login pages (SMS code from the dev inbox), the way a browser does it (cookies and forms by hand, no script).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import express from 'express';
import eoc from 'express-openid-connect';
import Auth0Strategy from 'passport-auth0';
import { Browser, field, loginPages, management } from '../lib/callsign.mjs';

const domain = process.env.CALLSIGN_TEST_DOMAIN;
const issuer = `https://${domain}/`;
const creds = JSON.parse(readFileSync(process.env.CALLSIGN_TEST_BOOTSTRAP, 'utf8'));
const PHONE = '+14155550123';
const EMAIL = 'web-sdk@example.com';
const PASSWORD = 'Str0ng-Passw0rd';
const api = management(issuer, creds);
const logIn = loginPages({ issuer, api, email: EMAIL, password: PASSWORD, phone: PHONE });

test.before(async () => {
  const u = await api('POST', '/users', { connection: 'Username-Password-Authentication', email: EMAIL, password: PASSWORD });
  assert.equal(u.status, 201, JSON.stringify(u.body));
  assert.equal((await api('PUT', '/guardian/factors/sms', { enabled: true })).status, 200);
  assert.equal((await api('PUT', '/guardian/policies', ['all-applications'])).status, 200);
});

test('express-openid-connect with its default login (id_token by form_post) logs in, reads the user and logs out at Callsign', async () => {
  // The port first (the callback URL names it), then the app with its settings.
  let handler = (_req, res) => res.status(503).end();
  const server = await new Promise((resolve) => { const s = express().use((req, res, next) => handler(req, res, next)).listen(0, '127.0.0.1', () => resolve(s)); });
  const base = `http://127.0.0.1:${server.address().port}`;
  const c = await api('POST', '/clients', { name: 'Express app', app_type: 'regular_web', callbacks: [`${base}/callback`], allowed_logout_urls: [base, `${base}/`] });
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
  const c = await api('POST', '/clients', { name: 'Passport app', app_type: 'regular_web', callbacks: ['http://127.0.0.1/cb'], grant_types: ['authorization_code', 'password'] });
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
