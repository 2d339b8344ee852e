// What the Node tests of Auth0's server-side libraries share (sdk-tests/web, sdk-tests/nextjs): a Management API
// client, a browser made of fetch (a cookie jar per host, no redirects followed, no script), and a walk through
// Callsign's login pages with the phone factor (the SMS code from the dev inbox). Standard library only.
import assert from 'node:assert/strict';

/** A Management API client for `issuer` with the bootstrap credentials `creds`. */
export function management(issuer, creds) {
  let token;
  const call = async (method, path, body) => {
    token ??= await tokenFor(issuer, creds);
    const r = await fetch(`${issuer}api/v2${path}`, {
      method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  };
  return call;
}

async function tokenFor(issuer, creds) {
  const r = await fetch(`${issuer}oauth/token`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', client_id: creds.client_id, client_secret: creds.client_secret, audience: creds.audience }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).access_token;
}

/** A cookie jar per host, and no redirects followed. */
export class Browser {
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
/** The value of the hidden field `name` in a page. */
export const field = (html, name) => { const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`)); return m && unescape(m[1]); };

/** Logs in as `email` / `password` with `phone` (enrolled the first time) through the login pages of `issuer`,
 * reading codes with the Management client `api`. `logIn(b, authorizeUrl)` follows the pages from `/authorize` on
 * and answers the code page's POST (the redirect back to the application). */
export function loginPages({ issuer, api, email, password, phone }) {
  // The code of the next SMS: a delivery job sends it just after the page that asked for it, so wait for a message
  // not seen before (the inbox lists newest first).
  const seen = new Set();
  async function newCode() {
    for (let i = 0; i < 100; i++) {
      const inbox = await api('GET', `/dev-inbox?to=${encodeURIComponent(phone)}`);
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
  return async function logIn(b, authorizeUrl) {
    let r = await b.go(authorizeUrl);
    assert.equal(r.status, 302, r.body);
    r = await b.go(r.location);
    assert.equal(r.status, 200, r.body);
    r = await b.go(`${issuer}u/login`, { method: 'POST', form: { email, password, csrf: field(r.body, 'csrf') } });
    assert.equal(r.status, 303, r.body);
    if (r.location.endsWith('/u/mfa/enroll')) {
      const p = await b.go(r.location);
      r = await b.go(`${issuer}u/mfa/enroll`, { method: 'POST', form: { country: 'US', phone: phone.slice(2), channel: 'sms', csrf: field(p.body, 'csrf') } });
      assert.equal(r.status, 303, r.body);
    }
    assert.ok(r.location.endsWith('/u/mfa/code'), r.location);
    const p = await b.go(r.location);
    const code = await newCode();
    return b.go(`${issuer}u/mfa/code`, { method: 'POST', form: { code, csrf: field(p.body, 'csrf') } });
  };
}
