// The official `auth0` Node SDK against a running Callsign (HTTPS, self-signed CA via NODE_EXTRA_CA_CERTS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { generateKeyPairSync, createSign } from 'node:crypto';
import { AuthenticationClient, ManagementClient } from 'auth0';

const domain = process.env.CALLSIGN_TEST_DOMAIN; // e.g. localhost:8443
const creds = JSON.parse(readFileSync(process.env.CALLSIGN_TEST_BOOTSTRAP, 'utf8'));
const auth = new AuthenticationClient({ domain, clientId: creds.client_id, clientSecret: creds.client_secret });
const unique = `${Date.now()}-${Math.floor(Math.random() * 1e6)}`;

async function adminToken() {
  const { data } = await auth.oauth.clientCredentialsGrant({ audience: `https://${domain}/api/v2/` });
  return data.access_token;
}

test('client credentials → create a user → read it back → list logs', async () => {
  const token = await adminToken();
  const mgmt = new ManagementClient({ domain, token });
  const email = `node-${unique}@example.com`;
  const { data: user, status } = await mgmt.users.create({
    connection: 'Username-Password-Authentication', email, password: 'N0de-Sdk-Passw0rd', user_metadata: { sdk: 'node' },
  });
  assert.equal(status, 201);
  assert.match(user.user_id, /^auth0\|/);
  const { data: got } = await mgmt.users.get({ id: user.user_id });
  assert.equal(got.email, email);
  assert.deepEqual(got.user_metadata, { sdk: 'node' });
  const { data: found } = await mgmt.users.getAll({ q: `email:"${email}"`, include_totals: true });
  assert.equal(found.total, 1);
  const { data: logs } = await mgmt.logs.getAll({ q: 'type:sapi', per_page: 100 });
  assert.ok(logs.some((l) => l.type === 'sapi' && l.client_id === creds.client_id), 'sapi event for the create');
  const { data: one } = await mgmt.logs.get({ id: logs[0].log_id });
  assert.equal(one.log_id, logs[0].log_id);
});

test('a token without the needed scope gets 403 insufficient_scope', async () => {
  const mgmt = new ManagementClient({ domain, token: await adminToken() });
  const { data: client } = await mgmt.clients.create({ name: `logs-only-${unique}`, app_type: 'non_interactive', grant_types: ['client_credentials'] });
  await mgmt.clientGrants.create({ client_id: client.client_id, audience: `https://${domain}/api/v2/`, scope: ['read:logs'] });
  const limitedAuth = new AuthenticationClient({ domain, clientId: client.client_id, clientSecret: client.client_secret });
  const { data } = await limitedAuth.oauth.clientCredentialsGrant({ audience: `https://${domain}/api/v2/` });
  const limited = new ManagementClient({ domain, token: data.access_token });
  await limited.logs.getAll({});
  await assert.rejects(limited.users.getAll({}), (err) => {
    assert.equal(err.statusCode, 403);
    assert.equal(err.errorCode, 'insufficient_scope');
    assert.equal(err.message, 'Insufficient scope, expected any of: read:users');
    return true;
  });
});

test('a token signed by a foreign key gets 401', async () => {
  const real = await adminToken();
  const [h, p] = real.split('.');
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signer = createSign('RSA-SHA256');
  signer.update(`${h}.${p}`);
  const forged = `${h}.${p}.${signer.sign(privateKey).toString('base64url')}`;
  const mgmt = new ManagementClient({ domain, token: forged });
  await assert.rejects(mgmt.users.getAll({}), (err) => {
    assert.equal(err.statusCode, 401);
    return true;
  });
});

test('wrong client secret is refused by the token endpoint', async () => {
  const bad = new AuthenticationClient({ domain, clientId: creds.client_id, clientSecret: 'wrong' });
  await assert.rejects(bad.oauth.clientCredentialsGrant({ audience: `https://${domain}/api/v2/` }), (err) => {
    assert.equal(err.statusCode, 401);
    assert.equal(err.error, 'access_denied');
    return true;
  });
});
