// Compares and edits a0deploy's tenant.yaml files for run.sh.
//   node check.mjs same A B        A and B describe the same tenant (`updated_at` aside)
//   node check.mjs modify A OUT    OUT = A with a new application, a changed template, the phone factor toggled,
//                                  public sign-up opened and a new IP-throttling limit
//   node check.mjs modified A B    B holds the changes `modify` made to A
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import assert from 'node:assert/strict';
import yaml from 'js-yaml';

const load = (f) => yaml.load(readFileSync(f, 'utf8'));
const NEW_APP = 'Imported from a0deploy';
const TEMPLATE = '{{code}} is your code for {{tenant.friendly_name}} (changed by a0deploy)';

function normalised(t) {
  const strip = (v) => {
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'updated_at').map(([k, x]) => [k, strip(x)]));
    }
    return v;
  };
  const out = strip(t);
  for (const k of ['clients', 'phoneTemplates', 'guardianFactors']) {
    if (Array.isArray(out[k])) out[k].sort((a, b) => JSON.stringify(a.name ?? a.type).localeCompare(JSON.stringify(b.name ?? b.type)));
  }
  return out;
}

const sms = (t) => t.guardianFactors.find((f) => f.name === 'sms');
const db = (t) => t.databases.find((d) => d.name === 'Username-Password-Authentication');
const [cmd, a, b] = process.argv.slice(2);
if (cmd === 'same') {
  assert.deepEqual(normalised(load(b)), normalised(load(a)));
  // A full export: the types that once had to be excluded are there.
  const t = load(a);
  assert.ok(db(t), 'the database connection is exported');
  assert.ok(t.attackProtection?.suspiciousIpThrottling && t.attackProtection?.bruteForceProtection, 'attack protection');
  assert.deepEqual(t.logStreams, []);
  console.log(`${b} describes the same tenant as ${a}`);
} else if (cmd === 'modify') {
  const t = load(a);
  t.clients.push({ name: NEW_APP, app_type: 'regular_web', callbacks: ['https://imported.example/callback'],
    grant_types: ['authorization_code', 'implicit', 'refresh_token'], web_origins: ['https://imported.example'] });
  // The verification text lives in two views of one setting (Guardian's templates and the Unified Phone Experience
  // templates, imported after them): change it where the last import reads it.
  t.phoneTemplates.find((p) => p.type === 'otp_verify').content.body.text = TEMPLATE;
  sms(t).enabled = !sms(t).enabled;
  db(t).options.disable_signup = false;
  t.attackProtection.suspiciousIpThrottling.stage['pre-login'].max_attempts = 42;
  mkdirSync(dirname(b), { recursive: true });
  writeFileSync(b, yaml.dump(t));
  console.log(`${b}: a new application, a changed template, sms ${sms(t).enabled ? 'on' : 'off'}, sign-up open, pre-login 42`);
} else if (cmd === 'modified') {
  const before = load(a);
  const after = load(b);
  const app = after.clients.find((c) => c.name === NEW_APP);
  assert.ok(app, 'the new application is there');
  assert.deepEqual(app.callbacks, ['https://imported.example/callback']);
  assert.deepEqual(app.web_origins, ['https://imported.example']);
  // Both views read back the new text.
  assert.equal(after.phoneTemplates.find((p) => p.type === 'otp_verify').content.body.text, TEMPLATE);
  assert.equal(after.guardianFactorTemplates[0].verification_message, TEMPLATE);
  assert.equal(sms(after).enabled, !sms(before).enabled);
  assert.equal(after.clients.length, before.clients.length + 1);
  assert.equal(db(before).options.disable_signup, true);
  assert.equal(db(after).options.disable_signup, false);
  assert.equal(after.attackProtection.suspiciousIpThrottling.stage['pre-login'].max_attempts, 42);
  // Every application signs in through the database connection, the new one too.
  assert.ok(db(after).enabled_clients.includes(NEW_APP), JSON.stringify(db(after).enabled_clients));
  console.log(`${b} holds the changes`);
} else {
  throw new Error(`unknown command ${cmd}`);
}
