#!/usr/bin/env python3
"""Preparation for scripts/bench.sh (never timed): applications, users and request pools for wrk.

Usage:
  prep.py setup STATE BASE DATA_DIR DB USERS   applications, factors, USERS users with a confirmed phone and one
                                               mfa_token each; writes STATE (JSON) and STATE.cc (the
                                               client_credentials body)
  prep.py pools STATE ROUND PER_USER           this round's pools: STATE.chal.ROUND (PER_USER challenges per user,
                                               users interleaved) and STATE.verify.ROUND (one mfa-oob grant per user,
                                               each with its own fresh challenge and the code from the dev inbox)

DB is `sqlite:PATH` or a postgres:// URL. The mfa_tokens of the pools are copies of each user's real one (made by a
password grant, so argon2 is paid once per user) with a new random token: the same row the password grant writes,
only a new token_hash, and an hour to live so that a long run does not outlive them. python3 standard library and
`psql` (PostgreSQL only).
"""
import concurrent.futures
import datetime
import hashlib
import http.client
import json
import re
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse

PASSWORD = "Bench-Passw0rd-1"
CONNECTION = "Username-Password-Authentication"
MFA_OOB = "http://auth0.com/oauth/grant-type/mfa-oob"
RESOURCE = "https://bench.example/api"
_local = threading.local()


def call(base, method, path, body=None, token=None, form=False):
    """One request on this thread's keep-alive connection; returns (status, parsed JSON or text)."""
    u = urllib.parse.urlsplit(base)
    for attempt in range(3):
        conn = getattr(_local, "conn", None)
        if conn is None:
            conn = _local.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        headers = {}
        data = None
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body)
                headers["content-type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body)
                headers["content-type"] = "application/json"
        if token:
            headers["authorization"] = f"Bearer {token}"
        try:
            conn.request(method, path, data, headers)
            r = conn.getresponse()
            raw = r.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            _local.conn = None
            if attempt == 2:
                raise
            continue
        try:
            return r.status, json.loads(raw or b"null")
        except ValueError:
            return r.status, raw.decode(errors="replace")
    raise RuntimeError("unreachable")


def expect(what, got, status=200):
    if got[0] != status:
        sys.exit(f"bench prep: {what}: expected {status}, got {got[0]}: {str(got[1])[:300]}")
    return got[1]


def parallel(fn, items, workers=8):
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        return list(ex.map(fn, items))


def clone_tokens(db, originals):
    """For each original mfa_token, a copy with a new random token; returns the new tokens in the same order."""
    fresh = [f"mfa_{secrets.token_urlsafe(32)}" for _ in originals]
    pairs = [(hashlib.sha256(n.encode()).hexdigest(), hashlib.sha256(o.encode()).hexdigest())
             for n, o in zip(fresh, originals)]
    cols = "token_hash, user_id, client_id, audience, scope, created_at, expires_at"
    pick = "user_id, client_id, audience, scope, created_at, expires_at + 6 * (expires_at - created_at)"
    if db.startswith("sqlite:"):
        c = sqlite3.connect(db[len("sqlite:"):], timeout=30)
        c.execute("PRAGMA busy_timeout = 30000")
        with c:
            c.executemany(f"INSERT INTO mfa_tokens ({cols}) SELECT ?, {pick} FROM mfa_tokens WHERE token_hash = ?",
                          pairs)
        c.close()
    else:
        values = ",".join(f"('{n}','{o}')" for n, o in pairs)
        sql = (f"INSERT INTO mfa_tokens ({cols}) SELECT p.n, {pick} FROM mfa_tokens "
               f"JOIN (VALUES {values}) AS p(n, o) ON token_hash = p.o;")
        subprocess.run(["psql", db, "-qAtX", "-v", "ON_ERROR_STOP=1"], input=sql, text=True, check=True,
                       stdout=subprocess.DEVNULL)
    return fresh


def setup(state_path, base, data_dir, db, users):
    creds = json.load(open(f"{data_dir}/bootstrap-credentials.json"))
    admin = expect("management token", call(base, "POST", "/oauth/token", {
        "grant_type": "client_credentials", "client_id": creds["client_id"],
        "client_secret": creds["client_secret"], "audience": creds["audience"]}))["access_token"]
    # client_credentials: an API and a machine-to-machine application granted it.
    expect("resource server", call(base, "POST", "/api/v2/resource-servers", {
        "name": "Bench API", "identifier": RESOURCE, "signing_alg": "RS256",
        "scopes": [{"value": "read:things", "description": "bench"}]}, admin), 201)
    m2m = expect("m2m application", call(base, "POST", "/api/v2/clients", {
        "name": "Bench m2m", "app_type": "non_interactive", "grant_types": ["client_credentials"]}, admin), 201)
    expect("client grant", call(base, "POST", "/api/v2/client-grants", {
        "client_id": m2m["client_id"], "audience": RESOURCE, "scope": ["read:things"]}, admin), 201)
    # MFA: an application with the password and mfa-oob grants, the phone factor on for every application.
    app = expect("application", call(base, "POST", "/api/v2/clients", {
        "name": "Bench app", "app_type": "regular_web", "grant_types": ["password", MFA_OOB]}, admin), 201)
    expect("sms factor", call(base, "PUT", "/api/v2/guardian/factors/sms", {"enabled": True}, admin))
    expect("message types", call(base, "PUT", "/api/v2/guardian/factors/phone/message-types",
                                 {"message_types": ["sms"]}, admin))
    expect("policy", call(base, "PUT", "/api/v2/guardian/policies", ["all-applications"], admin))
    # Every request comes from 127.0.0.1: IP throttling would stop the run after 50 messages.
    expect("IP throttling off", call(base, "PATCH", "/api/v2/attack-protection/suspicious-ip-throttling",
                                     {"enabled": False}, admin))

    def one(k):
        email, phone = f"bench-{k}@example.com", f"+14152{k:06d}"
        u = None
        for _ in range(100):  # a 503 means every password-hashing slot is busy: wait for one
            got = call(base, "POST", "/api/v2/users", {"connection": CONNECTION, "email": email,
                                                       "password": PASSWORD}, admin)
            if got[0] != 503:
                u = expect(f"user {email}", got, 201)
                break
            time.sleep(0.2)
        uid = urllib.parse.quote(u["user_id"], safe="")
        expect(f"phone of {email}", call(base, "POST", f"/api/v2/users/{uid}/authentication-methods",
                                         {"type": "phone", "phone_number": phone}, admin), 201)
        for _ in range(100):
            got = call(base, "POST", "/oauth/token", {
                "grant_type": "password", "client_id": app["client_id"], "client_secret": app["client_secret"],
                "username": email, "password": PASSWORD, "scope": "openid"})
            if got[0] != 503:
                break
            time.sleep(0.2)
        body = expect(f"password grant of {email}", got, 403)
        return {"email": email, "phone": phone, "mfa_token": body["mfa_token"]}

    t = time.monotonic()
    made = parallel(one, range(users), 4)
    print(f"bench prep: {users} users with a confirmed phone and an mfa_token in {time.monotonic() - t:.1f} s",
          file=sys.stderr)
    json.dump({"base": base, "db": db, "admin": admin, "app": {k: app[k] for k in ("client_id", "client_secret")},
               "users": made}, open(state_path, "w"))
    with open(f"{state_path}.cc", "w") as f:
        f.write(urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": m2m["client_id"],
                                        "client_secret": m2m["client_secret"], "audience": RESOURCE}) + "\n")


def pools(state_path, rnd, per_user):
    s = json.load(open(state_path))
    base, app, users = s["base"], s["app"], s["users"]
    originals = [u["mfa_token"] for u in users]
    # Challenges: one fresh mfa_token per user (a challenge does not spend it), PER_USER times, users interleaved.
    chal = clone_tokens(s["db"], originals)
    with open(f"{state_path}.chal.{rnd}", "w") as f:
        for _ in range(per_user):
            for tok in chal:
                f.write(json.dumps({"client_id": app["client_id"], "client_secret": app["client_secret"],
                                    "mfa_token": tok, "challenge_type": "oob"}) + "\n")
    # Verifications: another fresh mfa_token per user, its challenge now, and the code the dev inbox received.
    ver = clone_tokens(s["db"], originals)
    since = time.time() - 1

    def challenge(tok):
        return expect("pool challenge", call(base, "POST", "/mfa/challenge", {
            "client_id": app["client_id"], "client_secret": app["client_secret"], "mfa_token": tok,
            "challenge_type": "oob"}))["oob_code"]

    oobs = parallel(challenge, ver, 8)

    def code(u):
        q = urllib.parse.urlencode({"to": u["phone"], "per_page": 1})
        for _ in range(600):
            msgs = expect("dev inbox", call(base, "GET", f"/api/v2/dev-inbox?{q}", token=s["admin"]))
            msgs = msgs if isinstance(msgs, list) else msgs.get("messages", [])
            if msgs and datetime.datetime.fromisoformat(msgs[0]["created_at"]).timestamp() >= since:
                return re.search(r"\d{6}", msgs[0]["text"]).group(0)
            time.sleep(0.05)
        sys.exit(f"bench prep: no new message to {u['phone']} in the dev inbox within 30 s")

    codes = parallel(code, users, 8)
    with open(f"{state_path}.verify.{rnd}", "w") as f:
        for tok, oob, c in zip(ver, oobs, codes):
            f.write(urllib.parse.urlencode({"grant_type": MFA_OOB, "client_id": app["client_id"],
                                            "client_secret": app["client_secret"], "mfa_token": tok,
                                            "oob_code": oob, "binding_code": c}) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "setup":
        setup(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
    elif len(sys.argv) == 5 and sys.argv[1] == "pools":
        pools(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(__doc__)
