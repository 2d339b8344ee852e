// Public sign-up with the `auth0` Node SDK: the database connection through ManagementClient.connections (off on a
// new install, turned on with options.disable_signup), AuthenticationClient.database.signUp, Auth0's errors as the
// SDK reads them, and a password login of the new account.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AuthenticationClient, ManagementClient } from 'auth0';

const domain = process.env.CALLSIGN_TEST_DOMAIN;
const base = `https://${domain}`;
const creds = JSON.parse(readFileSync(process.env.CALLSIGN_TEST_BOOTSTRAP, 'utf8'));
const admin = new AuthenticationClient({ domain, clientId: creds.client_id, clientSecret: creds.client_secret });
const connection = 'Username-Password-Authentication';
const password = 'N0de-Signup-Passw0rd';

test('sign up through the database connection once an operator opens it', async () => {
  const { data: tok } = await admin.oauth.clientCredentialsGrant({ audience: `${base}/api/v2/` });
  const mgmt = new ManagementClient({ domain, token: tok.access_token });
  const { data: conns } = await mgmt.connections.getAll({ strategy: ['auth0'] });
  assert.equal(conns.length, 1);
  assert.equal(conns[0].name, connection);
  const { data: app } = await mgmt.clients.create({ name: 'node-signup', app_type: 'regular_web', grant_types: ['password'] });
  const auth = new AuthenticationClient({ domain, clientId: app.client_id, clientSecret: app.client_secret });
  const email = `node-signup-${Date.now()}@example.com`;

  await mgmt.connections.update({ id: conns[0].id }, { options: { disable_signup: true } });
  await assert.rejects(auth.database.signUp({ email, password, connection }), (err) => {
    assert.equal(err.statusCode, 400);
    assert.equal(err.error, 'operation_not_allowed');
    assert.equal(err.error_description, 'Public signup is disabled');
    return true;
  });

  const { data: updated } = await mgmt.connections.update({ id: conns[0].id }, { options: { disable_signup: false } });
  assert.equal(updated.options.disable_signup, false);
  const { data: user } = await auth.database.signUp({ email, password, connection, given_name: 'Nod' });
  assert.match(user._id, /^[0-9a-f]{24}$/);
  assert.equal(user.email, email);
  assert.equal(user.email_verified, false);
  const { data: stored } = await mgmt.users.get({ id: `auth0|${user._id}` });
  assert.equal(stored.given_name, 'Nod');

  await assert.rejects(auth.database.signUp({ email, password, connection }), (err) => {
    assert.equal(err.statusCode, 400);
    assert.equal(err.error, 'user_exists');
    return true;
  });
  await assert.rejects(auth.database.signUp({ email: `weak-${email}`, password: 'weak', connection }), (err) => {
    assert.equal(err.statusCode, 400);
    assert.equal(JSON.parse(err.body).name, 'PasswordStrengthError');
    return true;
  });

  // The password is right: tokens, or mfa_required when another test turned the MFA policy on.
  try {
    const { data: tokens } = await auth.oauth.passwordGrant({ username: email, password, scope: 'openid' });
    assert.ok(tokens.access_token);
  } catch (err) {
    assert.equal(err.error, 'mfa_required');
  }
  await mgmt.connections.update({ id: conns[0].id }, { options: { disable_signup: true } });
});
