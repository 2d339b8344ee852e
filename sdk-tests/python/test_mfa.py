"""ROPG + phone MFA with auth0-python against a running Callsign: factor configuration through the SDK's Guardian
client, mfa_required from GetToken.login, enrollment and challenge on the MFA API through the SDK's transport,
the code from the dev inbox, and the MFA grants."""
import json
import os
import uuid

import pytest
from auth0.authentication import GetToken
from auth0.exceptions import Auth0Error, RateLimitError
from auth0.management import Auth0
from auth0.rest import RestClient

DOMAIN = os.environ["CALLSIGN_TEST_DOMAIN"]
BASE = f"https://{DOMAIN}"
AUDIENCE = f"{BASE}/api/v2/"
with open(os.environ["CALLSIGN_TEST_BOOTSTRAP"]) as f:
    CREDS = json.load(f)
OOB = "http://auth0.com/oauth/grant-type/mfa-oob"
RECOVERY = "http://auth0.com/oauth/grant-type/mfa-recovery-code"
PASSWORD = "Pyth0n-Mfa-Passw0rd"


@pytest.fixture(scope="module")
def env():
    token = GetToken(DOMAIN, CREDS["client_id"], client_secret=CREDS["client_secret"]).client_credentials(AUDIENCE)["access_token"]
    mgmt = Auth0(DOMAIN, token)
    rest = RestClient(jwt=token)
    mgmt.guardian.update_factor("sms", {"enabled": True})
    mgmt.guardian.update_factor("recovery-code", {"enabled": True})
    rest.put(f"{AUDIENCE}guardian/factors/phone/message-types", data={"message_types": ["sms", "voice"]})
    rest.put(f"{AUDIENCE}guardian/policies", data=["all-applications"])
    assert any(f["name"] == "sms" and f["enabled"] for f in mgmt.guardian.all_factors())
    app = mgmt.clients.create({"name": "py-mfa", "app_type": "regular_web",
                               "grant_types": ["password", "http://auth0.com/oauth/grant-type/password-realm", OOB, RECOVERY]})
    gt = GetToken(DOMAIN, app["client_id"], client_secret=app["client_secret"])
    return {"mgmt": mgmt, "rest": rest, "gt": gt}


def new_user(env):
    email = f"mfa-{uuid.uuid4().hex[:10]}@example.com"
    user = env["mgmt"].users.create({"connection": "Username-Password-Authentication", "email": email, "password": PASSWORD})
    phone = "+1415555" + str(uuid.uuid4().int % 10000).zfill(4)
    return email, user, phone


def mfa_token(env, email):
    with pytest.raises(Auth0Error) as e:
        env["gt"].login(email, PASSWORD, realm="Username-Password-Authentication", scope="openid email")
    assert e.value.status_code == 403 and e.value.error_code == "mfa_required"
    return e.value.content["mfa_token"]


def newest_code(env, phone):
    msgs = env["rest"].get(f"{AUDIENCE}dev-inbox", params={"to": phone})
    assert msgs, "no message in the dev inbox"
    return "".join(c for c in msgs[0]["text"] if c.isdigit())[:6]


def wait_code(env, phone, count):
    import time
    for _ in range(100):
        msgs = env["rest"].get(f"{AUDIENCE}dev-inbox", params={"to": phone})
        if len(msgs) >= count:
            return newest_code(env, phone)
        time.sleep(0.05)
    raise AssertionError(f"expected {count} messages to {phone}")


def verify(env, mfa, oob, code):
    return env["gt"].authenticated_post(f"{BASE}/oauth/token", data={
        "client_id": env["gt"].client_id, "grant_type": OOB, "mfa_token": mfa, "oob_code": oob, "binding_code": code})


def test_enroll_verify_challenge_and_recover(env):
    email, user, phone = new_user(env)
    mfa = mfa_token(env, email)
    enrolled = env["gt"].post(f"{BASE}/mfa/associate", data={
        "authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": phone},
        headers={"Authorization": f"Bearer {mfa}"})
    assert enrolled["binding_method"] == "prompt" and enrolled["oob_channel"] == "sms"
    recovery = enrolled["recovery_codes"][0]
    tokens = verify(env, mfa, enrolled["oob_code"], wait_code(env, phone, 1))
    assert tokens["token_type"] == "Bearer" and "id_token" in tokens

    # The Management API sees the enrollment.
    enrollments = env["rest"].get(f"{AUDIENCE}users/{user['user_id']}/enrollments")
    assert enrollments[0]["status"] == "confirmed"
    assert env["mgmt"].guardian.get_enrollment(enrollments[0]["id"])["phone_number"].endswith(phone[-4:])

    # Log in again: challenge by voice.
    mfa = mfa_token(env, email)
    auths = RestClient(jwt=mfa).get(f"{BASE}/mfa/authenticators")
    voice = next(a for a in auths if a.get("oob_channel") == "voice")
    challenge = env["gt"].authenticated_post(f"{BASE}/mfa/challenge", data={
        "client_id": env["gt"].client_id, "mfa_token": mfa, "challenge_type": "oob", "authenticator_id": voice["id"]})
    assert challenge["challenge_type"] == "oob"
    assert "access_token" in verify(env, mfa, challenge["oob_code"], wait_code(env, phone, 2))

    # And with the recovery code.
    mfa = mfa_token(env, email)
    recovered = env["gt"].authenticated_post(f"{BASE}/oauth/token", data={
        "client_id": env["gt"].client_id, "grant_type": RECOVERY, "mfa_token": mfa, "recovery_code": recovery})
    assert len(recovered["recovery_code"]) == 24 and recovered["recovery_code"] != recovery

    logs = env["mgmt"].logs.search(q=f'user_id:"{user["user_id"]}"', per_page=100)
    types = {entry["type"] for entry in (logs["logs"] if isinstance(logs, dict) else logs)}
    for t in ["mfar", "gd_start_enroll", "gd_send_sms", "gd_send_voice", "gd_enrollment_complete", "seoobft", "sercft"]:
        assert t in types, t


def test_wrong_codes_hit_the_limit(env):
    email, _, phone = new_user(env)
    mfa = mfa_token(env, email)
    enrolled = env["gt"].post(f"{BASE}/mfa/associate", data={
        "authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": phone},
        headers={"Authorization": f"Bearer {mfa}"})
    code = wait_code(env, phone, 1)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(10):
        with pytest.raises(Auth0Error) as e:
            verify(env, mfa, enrolled["oob_code"], wrong)
        assert e.value.status_code == 403 and e.value.error_code == "invalid_grant"
    with pytest.raises(RateLimitError) as e:
        verify(env, mfa, enrolled["oob_code"], code)
    assert e.value.error_code == "too_many_attempts"
