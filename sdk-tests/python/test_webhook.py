"""The custom phone provider (`phone-message-hook`) checked by an independent Standard Webhooks implementation: the
PyPI `standardwebhooks` package verifies every request Callsign sends to a local receiver. The hook is configured
through Callsign's Management endpoint, an enrollment runs through the MFA API, and the code in the verified event
completes it. The selected provider is set back to `auth0` afterwards."""
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from auth0.authentication import GetToken
from auth0.exceptions import Auth0Error
from auth0.management import Auth0
from auth0.rest import RestClient
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

DOMAIN = os.environ["CALLSIGN_TEST_DOMAIN"]
BASE = f"https://{DOMAIN}"
AUDIENCE = f"{BASE}/api/v2/"
HOOK = f"{AUDIENCE}guardian/factors/phone/providers/phone-message-hook"
with open(os.environ["CALLSIGN_TEST_BOOTSTRAP"]) as f:
    CREDS = json.load(f)
OOB = "http://auth0.com/oauth/grant-type/mfa-oob"
PASSWORD = "Pyth0n-Hook-Passw0rd"


class Receiver:
    """An HTTP receiver that accepts a request only when `standardwebhooks` verifies it with every trusted secret."""

    def __init__(self):
        self.secrets = []
        self.verified = []  # (headers, event)
        self.rejected = []  # error messages
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k: v for k, v in self.headers.items()}
                try:
                    events = [Webhook(s).verify(body, headers) for s in receiver.secrets]
                    if not events:
                        raise WebhookVerificationError("no trusted secret")
                    receiver.verified.append((headers, events[0]))
                    self.send_response(204)
                except Exception as e:  # noqa: BLE001 - any failure is a rejection the test reports
                    receiver.rejected.append(f"{type(e).__name__}: {e}")
                    self.send_response(401)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms-hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n):
        for _ in range(200):
            if len(self.verified) >= n:
                return self.verified
            time.sleep(0.05)
        raise AssertionError(f"expected {n} verified requests; rejected: {self.rejected}")


@pytest.fixture
def hook():
    token = GetToken(DOMAIN, CREDS["client_id"], client_secret=CREDS["client_secret"]).client_credentials(AUDIENCE)["access_token"]
    mgmt = Auth0(DOMAIN, token)
    rest = RestClient(jwt=token)
    mgmt.guardian.update_factor("sms", {"enabled": True})
    rest.put(f"{AUDIENCE}guardian/factors/phone/message-types", data={"message_types": ["sms", "voice"]})
    rest.put(f"{AUDIENCE}guardian/policies", data=["all-applications"])
    receiver = Receiver()
    created = []
    try:
        configured = rest.put(HOOK, data={"url": receiver.url})
        assert configured["url"] == receiver.url
        # Two active secrets (a rotation in progress): both sign, each verifies on its own.
        for _ in range(2):
            s = rest.post(f"{HOOK}/secrets", data={})
            assert s["secret"].startswith("whsec_")
            receiver.secrets.append(s["secret"])
            created.append(s["id"])
        shown = rest.get(HOOK)
        assert [s["id"] for s in shown["secrets"]][-2:] == created
        assert "whsec_" not in json.dumps(shown)
        rest.put(f"{AUDIENCE}guardian/factors/phone/selected-provider", data={"provider": "phone-message-hook"})
        app = mgmt.clients.create({"name": "py-hook", "app_type": "regular_web",
                                   "grant_types": ["password", "http://auth0.com/oauth/grant-type/password-realm", OOB]})
        gt = GetToken(DOMAIN, app["client_id"], client_secret=app["client_secret"])
        yield {"mgmt": mgmt, "rest": rest, "gt": gt, "receiver": receiver}
    finally:
        rest.put(f"{AUDIENCE}guardian/factors/phone/selected-provider", data={"provider": "auth0"})
        for sid in created:
            try:
                rest.delete(f"{HOOK}/secrets/{sid}")
            except Auth0Error:
                pass
        receiver.server.shutdown()


def test_enrollment_event_verifies_with_standardwebhooks(hook):
    email = f"hook-{uuid.uuid4().hex[:10]}@example.com"
    user = hook["mgmt"].users.create({"connection": "Username-Password-Authentication", "email": email, "password": PASSWORD})
    phone = "+1415555" + str(uuid.uuid4().int % 10000).zfill(4)
    with pytest.raises(Auth0Error) as e:
        hook["gt"].login(email, PASSWORD, realm="Username-Password-Authentication", scope="openid")
    assert e.value.error_code == "mfa_required"
    mfa = e.value.content["mfa_token"]
    enrolled = hook["gt"].post(f"{BASE}/mfa/associate", data={
        "authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": phone},
        headers={"Authorization": f"Bearer {mfa}"})

    headers, event = hook["receiver"].wait(1)[0]
    assert len(headers["webhook-signature"].split(" ")) == 2
    options = event["message_options"]
    assert options["action"] == "enrollment"
    assert options["message_type"] == "sms"
    assert options["recipient"] == phone
    assert len(options["code"]) == 6 and options["code"] in options["text"]
    assert event["user"]["user_id"] == user["user_id"] and event["user"]["email"] == email
    assert event["client"]["client_id"] == hook["gt"].client_id
    assert event["tenant"]["id"] == "callsign"

    # The code the receiver got completes the enrollment.
    tokens = hook["gt"].authenticated_post(f"{BASE}/oauth/token", data={
        "client_id": hook["gt"].client_id, "grant_type": OOB, "mfa_token": mfa,
        "oob_code": enrolled["oob_code"], "binding_code": options["code"]})
    assert "access_token" in tokens
    assert not hook["receiver"].rejected
