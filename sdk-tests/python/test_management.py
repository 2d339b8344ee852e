"""The official auth0-python SDK against a running Callsign (HTTPS; REQUESTS_CA_BUNDLE trusts the test CA)."""
import json
import os
import time
import uuid

import pytest
from auth0.authentication import GetToken
from auth0.exceptions import Auth0Error
from auth0.management import Auth0

DOMAIN = os.environ["CALLSIGN_TEST_DOMAIN"]
SHORT_DOMAIN = os.environ["CALLSIGN_TEST_SHORT_LIVED_DOMAIN"]  # same database, 2-second access tokens
AUDIENCE = f"https://{DOMAIN}/api/v2/"
with open(os.environ["CALLSIGN_TEST_BOOTSTRAP"]) as f:
    CREDS = json.load(f)


def token(domain=DOMAIN, client_id=CREDS["client_id"], secret=CREDS["client_secret"]):
    return GetToken(domain, client_id, client_secret=secret).client_credentials(AUDIENCE)["access_token"]


def test_create_user_read_back_list_logs():
    mgmt = Auth0(DOMAIN, token())
    email = f"py-{uuid.uuid4().hex[:12]}@example.com"
    user = mgmt.users.create({"connection": "Username-Password-Authentication", "email": email,
                              "password": "Pyth0n-Sdk-Passw0rd", "app_metadata": {"plan": "pro"}})
    assert user["user_id"].startswith("auth0|")
    got = mgmt.users.get(user["user_id"])
    assert got["email"] == email and got["app_metadata"] == {"plan": "pro"}
    listed = mgmt.users.list(q=f'email:"{email}"')
    assert listed["total"] == 1 and listed["users"][0]["user_id"] == user["user_id"]
    logs = mgmt.logs.search(q="type:sapi", per_page=100)
    entries = logs["logs"] if isinstance(logs, dict) else logs
    assert any(entry["client_id"] == CREDS["client_id"] for entry in entries)
    with pytest.raises(Auth0Error) as e:
        mgmt.users.create({"connection": "Username-Password-Authentication", "email": email, "password": "Pyth0n-Sdk-Passw0rd"})
    assert e.value.status_code == 409


def test_missing_scope_is_403_insufficient_scope():
    mgmt = Auth0(DOMAIN, token())
    client = mgmt.clients.create({"name": "py-limited", "app_type": "non_interactive", "grant_types": ["client_credentials"]})
    mgmt.client_grants.create({"client_id": client["client_id"], "audience": AUDIENCE, "scope": ["read:users"]})
    limited = Auth0(DOMAIN, token(client_id=client["client_id"], secret=client["client_secret"]))
    limited.users.list()
    with pytest.raises(Auth0Error) as e:
        limited.logs.search()
    assert e.value.status_code == 403
    assert e.value.error_code == "insufficient_scope"
    assert e.value.message == "Insufficient scope, expected any of: read:logs,read:logs_users"


def test_expired_token_is_401():
    short = token(domain=SHORT_DOMAIN)
    mgmt = Auth0(DOMAIN, short)
    mgmt.users.list()  # valid now, on the other node too (shared keys and database)
    time.sleep(3)  # black-box: real time has to pass for a real server's token to expire
    with pytest.raises(Auth0Error) as e:
        mgmt.users.list()
    assert e.value.status_code == 401
    assert "Expired" in e.value.message
