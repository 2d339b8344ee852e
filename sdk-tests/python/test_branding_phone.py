"""The Unified Phone Experience endpoints (/api/v2/branding/phone/*) through auth0-python's RestClient (this SDK
version has no helpers for them), checked against the Guardian view through the SDK's Guardian client. Leaves the
tenant's phone configuration as it found it (the MFA tests share this server)."""
import json
import os

import pytest
from auth0.authentication import GetToken
from auth0.exceptions import Auth0Error
from auth0.management import Auth0
from auth0.rest import RestClient

DOMAIN = os.environ["CALLSIGN_TEST_DOMAIN"]
AUDIENCE = f"https://{DOMAIN}/api/v2/"
with open(os.environ["CALLSIGN_TEST_BOOTSTRAP"]) as f:
    CREDS = json.load(f)


@pytest.fixture(scope="module")
def api():
    token = GetToken(DOMAIN, CREDS["client_id"], client_secret=CREDS["client_secret"]).client_credentials(AUDIENCE)["access_token"]
    return Auth0(DOMAIN, token), RestClient(jwt=token)


def test_templates_are_the_guardian_templates(api):
    mgmt, rest = api
    before = mgmt.guardian.get_templates()
    listed = rest.get(f"{AUDIENCE}branding/phone/templates")["templates"]
    assert [t["type"] for t in listed] == ["otp_verify", "otp_enroll", "change_password", "blocked_account", "password_breach"]
    created = rest.post(f"{AUDIENCE}branding/phone/templates", data={
        "type": "otp_verify", "content": {"body": {"text": "{{ code }} from the Python SDK"}}})
    try:
        assert created["id"].startswith("tem_")
        assert mgmt.guardian.get_templates()["verification_message"] == "{{ code }} from the Python SDK"
        with pytest.raises(Auth0Error) as e:
            rest.post(f"{AUDIENCE}branding/phone/templates", data={"type": "otp_verify"})
        assert e.value.status_code == 409
        with pytest.raises(Auth0Error) as e:
            rest.patch(f"{AUDIENCE}branding/phone/templates/{created['id']}", data={"content": {"body": {"text": "{% if %}"}}})
        assert e.value.status_code == 400 and "content.body.text" in e.value.message
    finally:
        rest.delete(f"{AUDIENCE}branding/phone/templates/{created['id']}")
        mgmt.guardian.update_templates(before)
    assert mgmt.guardian.get_templates() == before


def test_a_provider_is_the_selected_guardian_provider(api):
    mgmt, rest = api
    types = rest.get(f"{AUDIENCE}guardian/factors/phone/message-types")
    provider = rest.post(f"{AUDIENCE}branding/phone/providers", data={
        "name": "custom", "credentials": {}, "configuration": {"delivery_methods": ["text"]}})
    try:
        assert provider["id"].startswith("pro_") and provider["disabled"] is False
        assert rest.get(f"{AUDIENCE}guardian/factors/phone/selected-provider") == {"provider": "phone-message-hook"}
        assert rest.get(f"{AUDIENCE}guardian/factors/phone/message-types") == {"message_types": ["sms"]}
        listed = rest.get(f"{AUDIENCE}branding/phone/providers")["providers"]
        assert [p["id"] for p in listed] == [provider["id"]] and listed[0]["credentials"] is None
    finally:
        rest.delete(f"{AUDIENCE}branding/phone/providers/{provider['id']}")
        rest.put(f"{AUDIENCE}guardian/factors/phone/message-types", data=types)
    assert rest.get(f"{AUDIENCE}guardian/factors/phone/selected-provider") == {"provider": "auth0"}
    with pytest.raises(Auth0Error) as e:
        rest.get(f"{AUDIENCE}branding/phone/providers/{provider['id']}")
    assert e.value.status_code == 404 and e.value.message == "Notification Resource not found"
