"""Creates the resources the fuzzing run aims at, then writes the Schemathesis configuration that names them.

Usage: fixtures.py SPEC BASE_URL BOOTSTRAP_JSON OUT_TOML

Every step is a plain request that must succeed: a fixture that cannot be made is a broken server, not a finding to
fuzz past. Every answer is also checked against SPEC (documented status, content type and body schema): these are
the successful flows (tokens, mfa_required, enrollment, the MFA grants) that generated requests rarely reach.
"""

import json
import os
import sys
import time
import urllib.parse

import requests
import schemathesis

SPEC, BASE, BOOTSTRAP, OUT = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3], sys.argv[4]
PASSWORD = "Fuzz-Passw0rd-1"
PHONE = "+14155550123"
MFA_GRANTS = [
    "password",
    "http://auth0.com/oauth/grant-type/mfa-oob",
    "http://auth0.com/oauth/grant-type/mfa-recovery-code",
]
schema = schemathesis.openapi.from_path(SPEC)
raw_spec = json.load(open(SPEC))
findings = []
checked = 0


def resolve(node):
    """Follow local `$ref`s."""
    while isinstance(node, dict) and "$ref" in node:
        target = raw_spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def conform(method, path, resp):
    """Record where an answer disagrees with the description of its operation."""
    op = schema.find_operation_by_path(method.lower(), urllib.parse.urlsplit(path).path)
    where = f"{method} {path} -> {resp.status_code}"
    if op is None:
        findings.append(f"{where}: no documented operation")
        return
    global checked
    checked += 1
    documented = op.definition.raw.get("responses", {})
    if str(resp.status_code) not in documented and "default" not in documented:
        findings.append(f"{where}: undocumented status (documented: {', '.join(documented)})")
        return
    content = resolve(documented.get(str(resp.status_code), documented.get("default"))).get("content", {})
    got = resp.headers.get("content-type", "").split(";")[0].strip()
    if content and resp.content and got not in content:
        findings.append(f"{where}: content type {got!r}, documented: {', '.join(content)}")
    try:
        op.validate_response(resp)
    except Exception as e:  # schemathesis raises a group of failures; its text names each
        findings.append(f"{where}: {e}")


def call(method, path, body=None, token=None, form=False, expect=(200, 201, 202, 204)):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    kw = {}
    if body is not None:
        kw = {"data": body} if form else {"json": body}
    resp = requests.request(method, BASE + path, headers=headers, timeout=30, **kw)
    if resp.status_code not in expect:
        sys.exit(f"fixture {method} {path}: {resp.status_code} {resp.text}")
    conform(method, path, resp)
    return resp.json() if resp.content else None


creds = json.load(open(BOOTSTRAP))
mgmt = call("POST", "/oauth/token", {
    "grant_type": "client_credentials",
    "client_id": creds["client_id"],
    "client_secret": creds["client_secret"],
    "audience": creds["audience"],
})["access_token"]


def api(method, path, body=None, **kw):
    return call(method, "/api/v2" + path, body, token=mgmt, **kw)


def client(name):
    return api("POST", "/clients", {"name": name, "app_type": "regular_web", "grant_types": MFA_GRANTS})


def user(email):
    return api("POST", "/users", {
        "connection": "Username-Password-Authentication", "email": email, "password": PASSWORD,
    })["user_id"]


# Applications: one the reads and updates aim at, one for DELETE, one whose grant is the client-grant fixture.
app = client("fuzz app")
app_del = client("fuzz app (delete)")
app_grant = client("fuzz app (grant)")
grant = api("POST", "/client-grants", {
    "client_id": app_grant["client_id"], "audience": creds["audience"], "scope": ["read:users"],
})
grant_del = api("POST", "/client-grants", {
    "client_id": app_del["client_id"], "audience": creds["audience"], "scope": ["read:users"],
})

# The phone factor on for every application, so a password grant answers mfa_required.
api("PUT", "/guardian/factors/sms", {"enabled": True})
api("PUT", "/guardian/factors/recovery-code", {"enabled": True})
api("PUT", "/guardian/factors/phone/message-types", {"message_types": ["sms", "voice"]})
api("PUT", "/guardian/policies", ["all-applications"])

# Users, each with an enrolled phone: one for reads and updates (and the MFA API), one whose phone, enrollments
# and methods the destructive operations may take, and one for DELETE /users/{id}.
email = "fuzz-user@example.com"
email_del = "fuzz-delete@example.com"
uid = user(email)
uid_del = user(email_del)
uid_gone = user("fuzz-gone@example.com")


def login(username):
    r = call("POST", "/oauth/token", {
        "grant_type": "password", "client_id": app["client_id"], "client_secret": app["client_secret"],
        "username": username, "password": PASSWORD, "scope": "openid email profile",
    }, expect=(403,))
    return r["mfa_token"]


def code_for(phone, seen):
    """The code of the newest dev-inbox message to `phone`, once there are more than `seen` of them."""
    for _ in range(100):
        inbox = api("GET", "/dev-inbox?" + urllib.parse.urlencode({"to": phone}))
        if len(inbox) > seen:
            return inbox[0]["text"].split(" ")[0]
        time.sleep(0.1)
    sys.exit(f"fixture: no new code for {phone} in the dev inbox")


def mfa_grant(mfa, **fields):
    kind = "mfa-oob" if "oob_code" in fields else "mfa-recovery-code"
    return call("POST", "/oauth/token", {
        "grant_type": f"http://auth0.com/oauth/grant-type/{kind}", "client_id": app["client_id"],
        "client_secret": app["client_secret"], "mfa_token": mfa, **fields,
    }, form=True)


def enroll(username, phone):
    """Enroll a phone by SMS and verify it with the code from the dev inbox; returns (tokens, recovery code)."""
    mfa = login(username)
    assoc = call("POST", "/mfa/associate", {
        "authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": phone,
    }, token=mfa)
    tokens = mfa_grant(mfa, oob_code=assoc["oob_code"], binding_code=code_for(phone, 0))
    return tokens, assoc["recovery_codes"][0]


def first_id(path, key="id"):
    return api("GET", path)[0][key]


tokens, recovery = enroll(email, PHONE)
user_token = tokens["access_token"]
enroll(email_del, "+14155550124")
enroll("fuzz-gone@example.com", "+14155550125")
# The other successful flows, for their answers' sake: a challenge and its code, a recovery code, the
# password-realm grant, /userinfo.
mfa = login(email)
challenge = call("POST", "/mfa/challenge", {
    "client_id": app["client_id"], "client_secret": app["client_secret"], "mfa_token": mfa, "challenge_type": "oob",
})
mfa_grant(mfa, oob_code=challenge["oob_code"], binding_code=code_for(PHONE, 1))
mfa_grant(login(email), recovery_code=recovery)
call("POST", "/oauth/token", {
    "grant_type": "http://auth0.com/oauth/grant-type/password-realm", "realm": "Username-Password-Authentication",
    "client_id": app["client_id"], "client_secret": app["client_secret"], "username": email, "password": PASSWORD,
}, expect=(403,))
call("GET", "/userinfo", token=user_token)
call("POST", "/userinfo", token=user_token)
call("GET", "/.well-known/openid-configuration")
call("GET", "/.well-known/jwks.json")
# Fresh mfa_tokens (each enrollment spent its own) for the MFA API operations; they last 10 minutes.
mfa_token = login(email)
mfa_token_del = login(email_del)
authenticator = call("GET", "/mfa/authenticators", token=mfa_token)[0]["id"]
authenticator_del = call("GET", "/mfa/authenticators", token=mfa_token_del)[0]["id"]
q_uid, q_uid_del = urllib.parse.quote(uid, safe=""), urllib.parse.quote(uid_del, safe="")
method = first_id(f"/users/{q_uid}/authentication-methods")
method_del = first_id(f"/users/{q_uid_del}/authentication-methods")
enrollment = first_id(f"/users/{q_uid}/enrollments")
enrollment_del = first_id(f"/users/{q_uid_del}/enrollments")

# Unified Phone Experience: the provider record and a template; a webhook signing secret.
# Port 9 (discard) on the loopback: a try or a delivery through the hook fails fast and stays on this machine.
HOOK_URL = "http://127.0.0.1:9/hook"
api("PUT", "/guardian/factors/phone/providers/phone-message-hook", {"url": HOOK_URL})
api("POST", "/branding/phone/providers", {
    "name": "custom", "disabled": True, "credentials": {}, "configuration": {"delivery_methods": ["text", "voice"]},
}, expect=(201, 409))
providers = api("GET", "/branding/phone/providers")["providers"]
provider = providers[0]["id"] if providers else "none"
template = api("POST", "/branding/phone/templates", {"type": "blocked_account"})["id"]
template_del = api("POST", "/branding/phone/templates", {"type": "password_breach"})["id"]
secret = api("POST", "/guardian/factors/phone/providers/phone-message-hook/secrets")["id"]
log = api("GET", "/logs?per_page=1")[0]["log_id"]

# Where a path parameter names a fixture, half the generated cases use it and half stay generated (unknown ids,
# odd characters): both the 2xx paths and the 404 paths are exercised. Operations that destroy a fixture get
# their own.
P = 0.5
fixture_ops = [
    # (path regex, method regex or None, {parameter: dictionary or (dictionary, probability)}, Authorization header
    # or None)
    (r"^/api/v2/clients/\{id\}$", "GET|PATCH", {"path.id": "app"}, None),
    # Rotating the secret of the application the MFA fixtures authenticate with would strand them.
    (r"^/api/v2/clients/\{id\}(/rotate-secret)?$", "DELETE|POST", {"path.id": "app_del"}, None),
    (r"^/api/v2/client-grants/\{id\}$", "GET|PATCH", {"path.id": "grant"}, None),
    (r"^/api/v2/client-grants/\{id\}$", "DELETE", {"path.id": "grant_del"}, None),
    (r"^/api/v2/users/\{id\}(/logs|/enrollments|/authentication-methods)?$", "GET|PATCH|POST", {"path.id": "user"},
     None),
    (r"^/api/v2/users/\{id\}$", "DELETE", {"path.id": "user_gone"}, None),
    (r"^/api/v2/users/\{id\}/(authentication-methods|authenticators)$", "DELETE|PUT", {"path.id": "user_del"},
     None),
    (r"^/api/v2/users/\{id\}/authentication-methods/\{method_id\}$", "GET|PATCH",
     {"path.id": "user", "path.method_id": "method"}, None),
    (r"^/api/v2/users/\{id\}/authentication-methods/\{method_id\}$", "DELETE",
     {"path.id": "user_del", "path.method_id": "method_del"}, None),
    (r"^/api/v2/guardian/enrollments/\{id\}$", "GET", {"path.id": "enrollment"}, None),
    (r"^/api/v2/guardian/enrollments/\{id\}$", "DELETE", {"path.id": "enrollment_del"}, None),
    (r"^/api/v2/logs/\{id\}$", "GET", {"path.id": "log"}, None),
    # There is one provider record: DELETE gets only generated ids, so it cannot take the record from the rest.
    (r"^/api/v2/branding/phone/providers/\{id\}", "GET|PATCH|POST", {"path.id": "provider"}, None),
    (r"^/api/v2/branding/phone/templates/\{id\}", "GET|PATCH|POST", {"path.id": "template"}, None),
    (r"^/api/v2/branding/phone/templates/\{id\}$", "DELETE", {"path.id": "template_del"}, None),
    (r"^/api/v2/guardian/factors/phone/providers/phone-message-hook/secrets/\{id\}$", None,
     {"path.id": "secret"}, None),
    (r"^/api/v2/guardian/enrollments/ticket$", None, {"body.user_id": "user"}, None),
    # The webhook provider's URL is always the local discard port: a message sent through it goes nowhere else.
    (r"^/api/v2/guardian/factors/phone/providers/phone-message-hook$", "PUT", {"body.url": ("hook_url", 1.0)},
     None),
    (r"^/api/v2/client-grants$", "POST", {"body.client_id": "app"}, None),
    # The Management API takes the bootstrap client's token; the MFA API an mfa_token; /userinfo a user's token.
    (r"^/api/v2/", None, {}, f"Bearer {mgmt}"),
    (r"^/mfa/(associate|authenticators)$", None, {}, f"Bearer {mfa_token}"),
    (r"^/mfa/authenticators/\{id\}$", None, {"path.id": "authenticator_del"}, f"Bearer {mfa_token_del}"),
    (r"^/mfa/challenge$", None, {"body.client_id": "app_id", "body.client_secret": "app_secret",
                                 "body.mfa_token": "mfa_token", "body.authenticator_id": "authenticator"}, None),
    (r"^/oauth/token$", None, {"body.client_id": "app_id", "body.client_secret": "app_secret",
                               "body.username": "email", "body.password": "password",
                               "body.mfa_token": "mfa_token"}, None),
    (r"^/userinfo$", None, {}, f"Bearer {user_token}"),
]

dictionaries = {
    "app": app["client_id"], "app_del": app_del["client_id"], "grant": grant["id"], "grant_del": grant_del["id"],
    "user": uid, "user_del": uid_del, "user_gone": uid_gone, "method": method, "method_del": method_del,
    "enrollment": enrollment, "enrollment_del": enrollment_del, "log": log, "provider": provider,
    "template": template, "template_del": template_del, "secret": secret, "authenticator": authenticator,
    "authenticator_del": authenticator_del,
    "app_id": app["client_id"], "app_secret": app["client_secret"], "email": email, "password": PASSWORD,
    "mfa_token": mfa_token, "hook_url": HOOK_URL,
}


def q(s):
    return json.dumps(s)  # a TOML basic string is a JSON string for these values


lines = [
    "# Written by fixtures.py for one run; see run.sh.",
    "",
    "# Path parameters come from the fixtures below or from generation, never from earlier answers: with the",
    "# response pool on, an id read by one operation (the fixture user's phone) is fed to a destructive one, and",
    "# what later operations find depends on the order they ran in.",
    "[phases.examples]",
    "extra-data-sources = { responses = false }",
    "[phases.coverage]",
    "extra-data-sources = { responses = false }",
    "[phases.fuzzing]",
    "extra-data-sources = { responses = false }",
    "",
]
for name, value in dictionaries.items():
    lines += [f"[dictionaries.{name}]", f"values = [{q(value)}]", ""]
for path_re, method_re, params, auth in fixture_ops:
    # One name regex ("METHOD /path"): separate include-method and include-path filters would match either.
    name_re = f"^({method_re or '[A-Z]+'}) {path_re.removeprefix('^')}"
    lines += ["[[operations]]", f"include-name-regex = {q(name_re)}"]
    if params:
        bound = [(k, *(v if isinstance(v, tuple) else (v, P))) for k, v in params.items()]
        inner = ", ".join(f"{q(k)} = {{ dictionary = {q(d)}, probability = {p} }}" for k, d, p in bound)
        lines.append(f"parameters = {{ {inner} }}")
    if auth:
        lines.append(f"headers = {{ Authorization = {q(auth)} }}")
    lines.append("")
if os.environ.get("CALLSIGN_TEST_FUZZ_INNER") != "netns":
    # Without a network namespace of its own the server shares this machine's network, and the coverage phase does
    # send URLs other than the fixture's (`https://0.com`): leave the hook URL alone.
    lines += ["[[operations]]", 'include-name-regex = "^PUT /api/v2/guardian/factors/phone/providers/phone-message-hook$"',
              "enabled = false", ""]
with open(OUT, "w") as f:
    f.write("\n".join(lines))
print(f"fixtures: {len(dictionaries)} values for {len(fixture_ops)} operation groups; "
      f"{checked} answers checked against the description")
if findings:
    print(f"fixtures: {len(findings)} answers disagree with the description:")
    for f in findings:
        print(f"  {f}")
    sys.exit(1)
