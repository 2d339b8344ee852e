#!/usr/bin/env bash
# The five-minute tour: against a running Callsign (`cargo run --release -- serve`), create an application and a
# user, turn the phone factor on, log in, enroll a phone by SMS, read the code from the dev inbox, verify.
# Needs curl and python3. BASE and DATA default to the server's embedded defaults. Any step that fails stops the tour
# with what the server answered and a non-zero exit.
set -euo pipefail
BASE="${BASE:-http://127.0.0.1:8080}"
DATA="${DATA:-./data}"
# --fail-with-body: an HTTP error stops the tour, with the server's answer on the terminal.
CURL=(curl -sS --fail-with-body ${CURL_EXTRA:-})
PHONE="${PHONE:-+14155552671}"
EMAIL="${EMAIL:-tour-$RANDOM$RANDOM@example.com}"

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {'d': d}))" "$1"; }
trap 'echo "tour: step failed (line $LINENO)" >&2' ERR
creds() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$DATA/bootstrap-credentials.json" "$1"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. A Management API token from the bootstrap credentials"
TOKEN=$("${CURL[@]}" "$BASE/oauth/token" -H 'content-type: application/json' -d "{
  \"grant_type\":\"client_credentials\",\"client_id\":\"$(creds client_id)\",
  \"client_secret\":\"$(creds client_secret)\",\"audience\":\"$(creds audience)\"}" | json "d['access_token']")
AUTH=(-H "authorization: Bearer $TOKEN" -H 'content-type: application/json')
echo "ok"

say "2. An application allowed to use the password and MFA grants, and a user"
APP=$("${CURL[@]}" "$BASE/api/v2/clients" "${AUTH[@]}" -d '{"name":"Tour app","app_type":"regular_web","grant_types":["password","http://auth0.com/oauth/grant-type/mfa-oob","http://auth0.com/oauth/grant-type/mfa-recovery-code"]}')
CID=$(echo "$APP" | json "d['client_id']"); SECRET=$(echo "$APP" | json "d['client_secret']")
"${CURL[@]}" "$BASE/api/v2/users" "${AUTH[@]}" -d "{\"connection\":\"Username-Password-Authentication\",\"email\":\"$EMAIL\",\"password\":\"Tour-Passw0rd\"}" | json "d['user_id']"

say "3. Phone factor on, SMS and voice, required for every application; recovery codes on"
"${CURL[@]}" -X PUT "$BASE/api/v2/guardian/factors/sms" "${AUTH[@]}" -d '{"enabled":true}'; echo
"${CURL[@]}" -X PUT "$BASE/api/v2/guardian/factors/recovery-code" "${AUTH[@]}" -d '{"enabled":true}'; echo
"${CURL[@]}" -X PUT "$BASE/api/v2/guardian/factors/phone/message-types" "${AUTH[@]}" -d '{"message_types":["sms","voice"]}'; echo
"${CURL[@]}" -X PUT "$BASE/api/v2/guardian/policies" "${AUTH[@]}" -d '["all-applications"]'; echo

say "4. Log in with the password: the answer is mfa_required"
# The answer is a 403 on purpose: no --fail-with-body here.
LOGIN=$(curl -sS ${CURL_EXTRA:-} "$BASE/oauth/token" -H 'content-type: application/json' -d "{\"grant_type\":\"password\",\"client_id\":\"$CID\",\"client_secret\":\"$SECRET\",\"username\":\"$EMAIL\",\"password\":\"Tour-Passw0rd\",\"scope\":\"openid email\"}")
ERROR=$(echo "$LOGIN" | json "d['error']")
[ "$ERROR" = "mfa_required" ] || { echo "expected mfa_required, got: $LOGIN" >&2; exit 1; }
echo "$ERROR"
MFA=$(echo "$LOGIN" | json "d['mfa_token']")

say "5. Enroll a phone by SMS"
ASSOC=$("${CURL[@]}" "$BASE/mfa/associate" -H "authorization: Bearer $MFA" -H 'content-type: application/json' -d "{\"authenticator_types\":[\"oob\"],\"oob_channels\":[\"sms\"],\"phone_number\":\"$PHONE\"}")
OOB=$(echo "$ASSOC" | json "d['oob_code']")
RECOVERY=$(echo "$ASSOC" | json "d['recovery_codes'][0]")
echo "recovery code (shown once): $RECOVERY"

say "6. The code, from the development provider's inbox"
CODE=""
for _ in $(seq 1 50); do
  CODE=$("${CURL[@]}" -G "$BASE/api/v2/dev-inbox" --data-urlencode "to=$PHONE" "${AUTH[@]}" | json "(d[0]['text'].split(' ')[0] if d else '')")
  [ -n "$CODE" ] && break; sleep 0.1
done
[ -n "$CODE" ] || { echo "no code arrived in the dev inbox for $PHONE" >&2; exit 1; }
echo "code: $CODE"

say "7. Verify it: tokens"
"${CURL[@]}" "$BASE/oauth/token" -d grant_type=http://auth0.com/oauth/grant-type/mfa-oob -d "client_id=$CID" \
  -d "client_secret=$SECRET" -d "mfa_token=$MFA" -d "oob_code=$OOB" -d "binding_code=$CODE" | json "sorted(d.keys())"

say "8. What happened, from the log"
"${CURL[@]}" "$BASE/api/v2/logs?per_page=12" "${AUTH[@]}" | json "' '.join(l['type'] for l in reversed(d))"
