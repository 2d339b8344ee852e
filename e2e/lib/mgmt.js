// The Management API, from the bootstrap credentials run.sh hands over (CALLSIGN_E2E_BOOTSTRAP), over Node's fetch.
// Specs use it to set the tenant up (users, applications, Guardian) and to read the codes the development SMS/voice
// provider "sent" (GET /api/v2/dev-inbox).
const { readFileSync } = require('node:fs');
const { randomBytes } = require('node:crypto');

const DB_CONNECTION = 'Username-Password-Authentication';

function baseUrl() {
  const base = process.env.CALLSIGN_E2E_BASE_URL;
  if (!base) throw new Error('CALLSIGN_E2E_BASE_URL is not set: run the tests through e2e/run.sh');
  return base.replace(/\/+$/, '');
}

function bootstrap() {
  const file = process.env.CALLSIGN_E2E_BOOTSTRAP;
  if (!file) throw new Error('CALLSIGN_E2E_BOOTSTRAP is not set: run the tests through e2e/run.sh');
  return JSON.parse(readFileSync(file, 'utf8')); // { client_id, client_secret, audience }
}

/** A fresh address for a test user, e.g. `login-3f9a1c2b@example.com`. */
function uniqueEmail(prefix = 'e2e') { return `${prefix}-${randomBytes(4).toString('hex')}@example.com`; }

/** A fresh US number in E.164 (+1 415 555 xxxx), so inbox look-ups by `to` see only this test's messages. */
function uniquePhone() { return `+1415555${String(randomBytes(2).readUInt16BE() % 10000).padStart(4, '0')}`; }

/** The 6-digit code in a message's text, or undefined. */
function codeIn(text) { return (/\b(\d{6})\b/.exec(text || '') || [])[1]; }

class HttpError extends Error {
  constructor(method, path, status, body) {
    super(`${method} ${path} -> ${status}: ${typeof body === 'string' ? body : JSON.stringify(body)}`);
    Object.assign(this, { status, body });
  }
}

/** POST /oauth/token with a JSON body; returns the parsed answer, throws HttpError on a non-2xx. */
async function oauthToken(params) {
  const res = await fetch(`${baseUrl()}/oauth/token`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params),
  });
  const text = await res.text();
  let body; try { body = JSON.parse(text); } catch { body = text; }
  if (!res.ok) throw new HttpError('POST', '/oauth/token', res.status, body);
  return body;
}

/** A Management API access token by client_credentials with the bootstrap credentials. */
async function managementToken() {
  const c = bootstrap();
  const tok = await oauthToken({
    grant_type: 'client_credentials', client_id: c.client_id, client_secret: c.client_secret, audience: c.audience,
  });
  return tok.access_token;
}

class Mgmt {
  /** Use `await Mgmt.connect()`; `token` is a Management API access token. */
  constructor(token) { this.base = baseUrl(); this.token = token; }

  static async connect() { return new Mgmt(await managementToken()); }

  /** Any Management API call: `path` is under /api/v2 (e.g. '/users'). Returns the parsed JSON (null for 204). */
  async request(method, path, body) {
    const res = await fetch(`${this.base}/api/v2${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed = null;
    if (text) { try { parsed = JSON.parse(text); } catch { parsed = text; } }
    if (!res.ok) throw new HttpError(method, `/api/v2${path}`, res.status, parsed);
    return parsed;
  }

  get(path) { return this.request('GET', path); }
  post(path, body) { return this.request('POST', path, body ?? {}); }
  put(path, body) { return this.request('PUT', path, body ?? {}); }
  patch(path, body) { return this.request('PATCH', path, body ?? {}); }
  delete(path) { return this.request('DELETE', path); }

  /**
   * A database user. Defaults: a unique email and the password 'E2e-Passw0rd!'. Returns the created user with the
   * password it was given added as `password`, so a spec can type it into the login page.
   */
  async createUser({ email = uniqueEmail(), password = 'E2e-Passw0rd!', ...extra } = {}) {
    const user = await this.post('/users', { connection: DB_CONNECTION, email, password, ...extra });
    return { ...user, password };
  }

  /**
   * An application. Defaults: a regular web app allowed the authorization-code, refresh-token, password and MFA
   * grants, with the given callbacks (and logout URLs / web origins if passed). Returns it with client_secret.
   */
  createClient({
    name = `e2e-app-${randomBytes(3).toString('hex')}`,
    app_type = 'regular_web',
    callbacks = [],
    grant_types = [
      'authorization_code', 'refresh_token', 'password',
      'http://auth0.com/oauth/grant-type/mfa-oob', 'http://auth0.com/oauth/grant-type/mfa-recovery-code',
    ],
    ...extra
  } = {}) {
    return this.post('/clients', { name, app_type, callbacks, grant_types, ...extra });
  }

  /** PUT /guardian/factors/{name} {enabled}. Factor names as Auth0's: 'sms', 'recovery-code', ... */
  setFactor(name, enabled = true) { return this.put(`/guardian/factors/${name}`, { enabled }); }

  /** PUT /guardian/factors/phone/message-types: any of 'sms', 'voice'. */
  setMessageTypes(messageTypes = ['sms', 'voice']) {
    return this.put('/guardian/factors/phone/message-types', { message_types: messageTypes });
  }

  /** PUT /guardian/policies: ['all-applications'] makes MFA required everywhere, [] leaves it to the rules. */
  setPolicies(policies = ['all-applications']) { return this.put('/guardian/policies', policies); }

  /** The usual phone-MFA setup in one call: sms factor on, the message types, and the policy. */
  async enablePhoneMfa({ messageTypes = ['sms', 'voice'], policies = ['all-applications'] } = {}) {
    await this.setFactor('sms', true);
    await this.setMessageTypes(messageTypes);
    await this.setPolicies(policies);
  }

  /** Back to no MFA required and the sms factor off. */
  async resetGuardian() {
    await this.setPolicies([]);
    await this.setFactor('sms', false);
  }

  /**
   * GET /dev-inbox: what the development provider "sent", newest first, each
   * `{ id, to, channel: 'sms'|'voice', text, created_at }`. `to` (E.164) filters by recipient.
   */
  devInbox({ to, perPage = 50 } = {}) {
    const q = new URLSearchParams({ per_page: String(perPage) });
    if (to) q.set('to', to);
    return this.get(`/dev-inbox?${q}`);
  }

  /**
   * Waits for a message to `to` that is not among `after` (messages or ids, e.g. an earlier `devInbox({to})`),
   * and returns it. Throws after `timeoutMs`.
   */
  async waitForMessage(to, { after = [], channel, timeoutMs = 10_000 } = {}) {
    const seen = new Set(after.map((m) => (typeof m === 'object' ? m.id : m)));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const fresh = (await this.devInbox({ to })).find((m) => !seen.has(m.id) && (!channel || m.channel === channel));
      if (fresh) return fresh;
      if (Date.now() > deadline) throw new Error(`no new message to ${to} in the dev inbox after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Like waitForMessage, but returns the 6-digit code in it. */
  async waitForCode(to, opts) {
    const msg = await this.waitForMessage(to, opts);
    const code = codeIn(msg.text);
    if (!code) throw new Error(`no 6-digit code in the message to ${to}: ${JSON.stringify(msg.text)}`);
    return code;
  }
}

module.exports = { Mgmt, HttpError, managementToken, oauthToken, baseUrl, bootstrap, uniqueEmail, uniquePhone, codeIn };
