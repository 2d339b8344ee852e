"""Public sign-up with auth0-python: the database connection through the SDK's connections client (off on a new
install, turned on with options.disable_signup), Database.signup, Auth0's errors as the SDK raises them, and a
password login of the new account."""
import json
import os
import uuid

import pytest
from auth0.authentication import Database, GetToken
from auth0.exceptions import Auth0Error
from auth0.management import Auth0

DOMAIN = os.environ["CALLSIGN_TEST_DOMAIN"]
AUDIENCE = f"https://{DOMAIN}/api/v2/"
with open(os.environ["CALLSIGN_TEST_BOOTSTRAP"]) as f:
    CREDS = json.load(f)
DB = "Username-Password-Authentication"
PASSWORD = "Pyth0n-Signup-Passw0rd"


def test_signup_through_the_database_connection():
    token = GetToken(DOMAIN, CREDS["client_id"], client_secret=CREDS["client_secret"]).client_credentials(AUDIENCE)["access_token"]
    mgmt = Auth0(DOMAIN, token)
    conns = mgmt.connections.all(strategy="auth0")
    assert [c["name"] for c in conns] == [DB]
    cid = conns[0]["id"]
    assert mgmt.connections.get(cid)["strategy"] == "auth0"
    app = mgmt.clients.create({"name": "py-signup", "app_type": "regular_web", "grant_types": ["password", "http://auth0.com/oauth/grant-type/password-realm"]})
    db = Database(DOMAIN, app["client_id"])
    email = f"py-signup-{uuid.uuid4().hex[:10]}@example.com"

    mgmt.connections.update(cid, {"options": {"disable_signup": True}})
    with pytest.raises(Auth0Error) as e:
        db.signup(email=email, password=PASSWORD, connection=DB)
    assert e.value.status_code == 400 and e.value.error_code == "operation_not_allowed"

    assert mgmt.connections.update(cid, {"options": {"disable_signup": False}})["options"]["disable_signup"] is False
    user = db.signup(email=email, password=PASSWORD, connection=DB, user_metadata={"plan": "gold"})
    assert user["email"] == email and user["email_verified"] is False and len(user["_id"]) == 24
    assert mgmt.users.get(f"auth0|{user['_id']}")["user_metadata"] == {"plan": "gold"}
    with pytest.raises(Auth0Error) as e:
        db.signup(email=email, password=PASSWORD, connection=DB)
    assert e.value.status_code == 400 and e.value.error_code == "user_exists"
    with pytest.raises(Auth0Error) as e:
        db.signup(email=f"weak-{email}", password="weak", connection=DB)
    assert e.value.status_code == 400 and e.value.error_code == "invalid_password"

    gt = GetToken(DOMAIN, app["client_id"], client_secret=app["client_secret"])
    # The password is right: tokens, or mfa_required when another test turned the MFA policy on.
    try:
        assert gt.login(email, PASSWORD, realm=DB, scope="openid")["access_token"]
    except Auth0Error as e:
        assert e.error_code == "mfa_required"
    mgmt.connections.update(cid, {"options": {"disable_signup": True}})
