// ROPG + phone MFA with the `auth0` Node SDK: Guardian configuration through ManagementClient, mfa_required from
// passwordGrant, the MFA API over fetch (this SDK version has no MFA helpers), and the code from the dev inbox.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AuthenticationClient, ManagementClient } from 'auth0';

const domain = process.env.CALLSIGN_TEST_DOMAIN;
const base = `https://${domain}`;
const creds = JSON.parse(readFileSync(process.env.CALLSIGN_TEST_BOOTSTRAP, 'utf8'));
const admin = new AuthenticationClient({ domain, clientId: creds.client_id, clientSecret: creds.client_secret });

test('enroll a phone by SMS and log in with the code', async () => {
  const { data: tok } = await admin.oauth.clientCredentialsGrant({ audience: `${base}/api/v2/` });
  const mgmt = new ManagementClient({ domain, token: tok.access_token });
  await mgmt.guardian.updateFactor({ name: 'sms' }, { enabled: true });
  await mgmt.guardian.updateFactor({ name: 'recovery-code' }, { enabled: true });
  await mgmt.guardian.updatePhoneFactorMessageTypes({ message_types: ['sms', 'voice'] });
  await mgmt.guardian.updatePolicies(['all-applications']);
  const { data: templates } = await mgmt.guardian.getPhoneFactorTemplates();
  assert.match(templates.verification_message, /\{\{code\}\}/);

  const { data: app } = await mgmt.clients.create({
    name: 'node-mfa', app_type: 'regular_web',
    grant_types: ['password', 'http://auth0.com/oauth/grant-type/mfa-oob'],
  });
  const email = `node-mfa-${Date.now()}@example.com`;
  const phone = `+1415555${String(Date.now() % 10000).padStart(4, '0')}`;
  await mgmt.users.create({ connection: 'Username-Password-Authentication', email, password: 'N0de-Mfa-Passw0rd' });

  const auth = new AuthenticationClient({ domain, clientId: app.client_id, clientSecret: app.client_secret });
  let mfaToken;
  await assert.rejects(auth.oauth.passwordGrant({ username: email, password: 'N0de-Mfa-Passw0rd', scope: 'openid' }), (err) => {
    assert.equal(err.statusCode, 403);
    assert.equal(err.error, 'mfa_required');
    mfaToken = JSON.parse(err.body).mfa_token;
    return true;
  });

  const assoc = await fetch(`${base}/mfa/associate`, {
    method: 'POST',
    headers: { authorization: `Bearer ${mfaToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ authenticator_types: ['oob'], oob_channels: ['sms'], phone_number: phone }),
  }).then((r) => r.json());
  assert.equal(assoc.binding_method, 'prompt');
  assert.equal(assoc.recovery_codes.length, 1);

  let code;
  for (let i = 0; i < 100 && !code; i++) {
    const inbox = await fetch(`${base}/api/v2/dev-inbox?to=${encodeURIComponent(phone)}`, {
      headers: { authorization: `Bearer ${tok.access_token}` },
    }).then((r) => r.json());
    code = inbox[0]?.text.split(' ')[0];
    if (!code) await new Promise((r) => setTimeout(r, 50));
  }
  assert.match(code, /^\d{6}$/);

  const tokens = await fetch(`${base}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'http://auth0.com/oauth/grant-type/mfa-oob', client_id: app.client_id, client_secret: app.client_secret,
      mfa_token: mfaToken, oob_code: assoc.oob_code, binding_code: code,
    }),
  });
  assert.equal(tokens.status, 200);
  const body = await tokens.json();
  assert.equal(body.token_type, 'Bearer');
  assert.ok(body.id_token);

  const { data: logs } = await mgmt.logs.getAll({ q: 'type:gd_enrollment_complete', per_page: 100 });
  assert.ok(logs.length >= 1);
  await mgmt.guardian.updatePolicies([]);
});
