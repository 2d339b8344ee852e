#!/usr/bin/env python3
"""Three Callsign nodes, one PostgreSQL, one Redis: the client. Every request goes to a chosen node (explicitly, or
round-robin); each check is a named test that prints PASS or FAIL, and the last line is `cluster: N passed, M failed`.

Usage: cluster.py NODES_JSON           (run by run.sh, which starts the nodes and writes NODES_JSON)
       cluster.py --delete-redis-keys REDIS_URL PREFIX     (run.sh's cleanup)
python3 standard library only. The nodes' settings (CALLSIGN_* variables) come from run.sh's environment.
Optional: CALLSIGN_TEST_CLUSTER_STREAM_USERS (test 6, default 30), CALLSIGN_TEST_CLUSTER_PHASE_SECS (test 7, 5),
CALLSIGN_TEST_CLUSTER_COST_USERS (test 8, 60).
"""
import base64
import concurrent.futures
import hashlib
import html.parser
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse

import wire_count

MFA_OOB = "http://auth0.com/oauth/grant-type/mfa-oob"
PASSWORD = "Cluster-Passw0rd"
CONNECTION = "Username-Password-Authentication"
CALLBACK = "http://127.0.0.1/cb"
DOWN_SECS = 1.0


def env_int(name, default):
    return int(os.environ.get(name, "") or default)


# --- Redis, by a raw socket (INFO commandstats, and the cleanup of this run's keys) ------------------------------------

def redis_connect(url):
    u = urllib.parse.urlsplit(url)
    s = socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=10)
    f = s.makefile("rwb")
    if u.password:
        redis_cmd(f, "AUTH", urllib.parse.unquote(u.password))
    db = (u.path or "/").strip("/")
    if db:
        redis_cmd(f, "SELECT", db)
    return s, f


def redis_cmd(f, *args):
    f.write(f"*{len(args)}\r\n".encode())
    for a in args:
        a = str(a).encode()
        f.write(b"$%d\r\n%s\r\n" % (len(a), a))
    f.flush()
    return redis_read(f)


def redis_read(f):
    line = f.readline()
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode(errors="replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [redis_read(f) for _ in range(n)]
    raise RuntimeError(f"unexpected Redis reply {line!r}")


def delete_redis_keys(url, prefix):
    s, f = redis_connect(url)
    with s:
        cursor, n = "0", 0
        while True:
            cursor, keys = redis_cmd(f, "SCAN", cursor, "MATCH", prefix.replace("*", r"\*") + "*", "COUNT", 1000)
            if keys:
                n += redis_cmd(f, "DEL", *keys)
            if cursor == "0":
                return n


if len(sys.argv) == 4 and sys.argv[1] == "--delete-redis-keys":
    print(delete_redis_keys(sys.argv[2], sys.argv[3]))
    sys.exit(0)

CFG = json.load(open(sys.argv[1]))
NODES = CFG["nodes"]
N = len(NODES)
DB_URL = CFG["database_url"]
PUBLIC_URL = CFG["public_url"]
T_START = time.monotonic()


def log(msg):
    print(msg, flush=True)


def redis_total_calls():
    """Total calls over every command (INFO commandstats), minus the INFO itself."""
    s, f = redis_connect(CFG["redis_url"])
    with s:
        info = redis_cmd(f, "INFO", "commandstats")
    return sum(int(m) for m in re.findall(r"calls=(\d+)", info)) - 1


class RedisMonitor:
    """MONITOR while a phase runs: the commands this cluster's nodes sent (on the connections that touched a key under
    this run's prefix; commands run inside Lua scripts are not counted), whatever else uses the same Redis."""

    def __init__(self):
        self.sock, self.f = redis_connect(CFG["redis_url"])
        self.f.write(b"*1\r\n$7\r\nMONITOR\r\n")
        self.f.flush()
        check(self.f.readline().startswith(b"+OK"), "MONITOR refused")
        self.lines = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        marker = ('"' + CFG["redis_prefix"]).encode()
        try:
            for line in self.f:
                m = re.match(rb"\+[\d.]+ \[\d+ ([^\]]+)\]", line)
                if m and m.group(1) != b"lua":
                    self.lines.append((m.group(1), marker in line))
        except (OSError, ValueError):
            pass

    def stop(self):
        time.sleep(0.2)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)
        ours = {a for a, keyed in self.lines if keyed}
        return sum(1 for a, _ in self.lines if a in ours)


# --- HTTP: one node at a time ------------------------------------------------------------------------------------------

class Refused(Exception):
    """The node did not accept the connection: the request was never sent."""


_local = threading.local()


def call(node, method, path, body=None, token=None, form=False, headers=None, keepalive=False, timeout=30,
         raw=False):
    """(status, parsed body, response headers) from node `node` (0-based). Refused when the connection is refused;
    any other connection failure raises OSError (the request may or may not have been processed)."""
    h = {}
    data = None
    if body is not None:
        if form:
            data = urllib.parse.urlencode(body).encode()
            h["content-type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
            h["content-type"] = "application/json"
    if token:
        h["authorization"] = f"Bearer {token}"
    h.update(headers or {})
    port = NODES[node]["port"]
    conns = getattr(_local, "conns", None)
    if conns is None:
        conns = _local.conns = {}
    for attempt in (0, 1):
        conn = conns.pop(port, None) if keepalive else None
        reused = conn is not None
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            try:
                conn.connect()
            except ConnectionRefusedError as e:
                raise Refused(str(e)) from e
        try:
            if not keepalive:
                h["connection"] = "close"
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            payload = r.read()
            status, rh = r.status, {k.lower(): v for k, v in r.getheaders()}
            cookies = r.headers.get_all("set-cookie") or []
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            conn.close()
            if reused and attempt == 0:
                continue  # a kept-alive connection the server had closed: once more on a new one
            raise
        if keepalive and not r.will_close:
            conns[port] = conn
        else:
            conn.close()
        break
    rh["set-cookie"] = cookies
    if raw:
        return status, payload.decode(errors="replace"), rh
    try:
        parsed = json.loads(payload) if payload else None
    except ValueError:
        parsed = payload.decode(errors="replace")
    return status, parsed, rh


class Fail(Exception):
    pass


# Each node caches the configuration and sees another node's change within 250 ms (docs/DEPLOYMENT.md): a test that
# changes it on one node and then relies on it on the others waits that long first. Test 3 measures the delay.
CONFIG_SETTLE_SECS = 0.3


def settle():
    time.sleep(CONFIG_SETTLE_SECS)


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def expect(what, got, status=200):
    if got[0] != status:
        raise Fail(f"{what}: expected {status}, got {got[0]}: {str(got[1])[:300]}")
    return got[1]


def jwt_part(token, i):
    p = token.split(".")[i]
    return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))


# --- the database, read directly ---------------------------------------------------------------------------------------

def sql(query):
    out = subprocess.run(["psql", DB_URL, "-Atqc", query], check=True, capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


def sql_json(query):
    return json.loads(sql(query) or "null")


def xact_commits():
    return int(sql("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"))


def unfinished_jobs():
    return int(sql("SELECT count(*) FROM delivery_jobs WHERE status IN ('pending', 'running')"))


def wait_unfinished(bound_secs=2):
    """Return as soon as some delivery job is pending or running (polled inside PostgreSQL, every millisecond), or
    after bound_secs."""
    sql("DO $$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN LOOP EXIT WHEN EXISTS (SELECT 1 FROM "
        "delivery_jobs WHERE status IN ('pending', 'running')) OR clock_timestamp() - t0 > "
        f"interval '{bound_secs} seconds'; PERFORM pg_sleep(0.001); END LOOP; END $$")


def wait_drained(bound=60):
    t = time.monotonic()
    while time.monotonic() - t < bound:
        if unfinished_jobs() == 0:
            return time.monotonic() - t
        time.sleep(0.05)
    return None


# --- the nodes ---------------------------------------------------------------------------------------------------------

def node_argv(i, *command):
    n = NODES[i]
    # The node's settings file (the deployment example, adapted by run.sh) names the database (in a file) and says
    # the rest again; without one, flags.
    where = ["--config", n["config"]] if n.get("config") else ["--database-url", DB_URL]
    return [CFG["bin"], *where, "--data-dir", n["data_dir"], "--listen", f"127.0.0.1:{n['port']}", *command]


def alive(i):
    try:
        return call(i, "GET", "/readyz", timeout=2)[0] == 200
    except (Refused, OSError):
        return False


def kill_node(i):
    pid = NODES[i]["pid"]
    os.kill(pid, signal.SIGKILL)
    if NODES[i].get("proc") is not None:
        NODES[i]["proc"].wait()
    # Not our child when run.sh started it: wait until the port refuses.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            call(i, "GET", "/healthz", timeout=1)
        except Refused:
            return
        except OSError:
            pass
        time.sleep(0.01)
    raise Fail(f"node {i + 1} still answers after SIGKILL")


def start_node(i):
    n = NODES[i]
    logf = open(n["log"], "ab")
    p = subprocess.Popen(node_argv(i, "serve"), stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
    with open(CFG["pidfile"], "a") as f:
        f.write(f"{p.pid}\n")
    n["pid"], n["proc"] = p.pid, p
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise Fail(f"node {i + 1} exited ({p.returncode}) on restart; see {n['log']}")
        if alive(i):
            return
        time.sleep(0.05)
    raise Fail(f"node {i + 1} was not ready 60 s after its restart")


# --- shared state and helpers ------------------------------------------------------------------------------------------

S = {}  # set up by test 1, used by the later tests
_phone_seq = iter(range(1000, 10000))
_phone_lock = threading.Lock()


def new_phone():
    with _phone_lock:
        return f"+1415555{next(_phone_seq):04d}"


def mgmt_token(node):
    c = json.load(open(os.path.join(NODES[0]["data_dir"], "bootstrap-credentials.json")))
    return expect(f"management token (node {node + 1})", call(node, "POST", "/oauth/token", {
        "grant_type": "client_credentials", "client_id": c["client_id"], "client_secret": c["client_secret"],
        "audience": c["audience"]}))["access_token"]


def retry_busy(fn, what):
    """A password check can answer 503 (every hashing slot busy): retry those."""
    for _ in range(50):
        got = fn()
        if got[0] != 503:
            return got
        time.sleep(0.2)
    raise Fail(f"{what}: 503 fifty times")


def create_user(node, email, phone=None):
    """A user; with `phone`, a confirmed phone added through the Management API (no message sent, so the user still
    has all 10 messages of the hour)."""
    u = expect(f"create {email}", retry_busy(lambda: call(node, "POST", "/api/v2/users", {
        "connection": CONNECTION, "email": email, "password": PASSWORD}, S["admin"]), email), 201)
    if phone:
        uid = urllib.parse.quote(u["user_id"], safe="")
        expect(f"phone for {email}", call((node + 1) % N, "POST", f"/api/v2/users/{uid}/authentication-methods",
                                          {"type": "phone", "phone_number": phone}, S["admin"]), 201)
    return u


def password_grant(node, email, password=PASSWORD, headers=None):
    app = S["app"]
    return retry_busy(lambda: call(node, "POST", "/oauth/token", {
        "grant_type": "password", "client_id": app["client_id"], "client_secret": app["client_secret"],
        "username": email, "password": password, "scope": "openid"}, headers=headers), f"password grant {email}")


def mfa_token(node, email):
    return expect(f"password grant for {email} (node {node + 1})", password_grant(node, email), 403)["mfa_token"]


def challenge(node, mfa, headers=None, keepalive=False):
    app = S["app"]
    return call(node, "POST", "/mfa/challenge", {"client_id": app["client_id"], "client_secret": app["client_secret"],
                                                 "mfa_token": mfa, "challenge_type": "oob"},
                headers=headers, keepalive=keepalive)


def inbox_code(node, phone, bound=10):
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        msgs = expect("dev inbox", call(node, "GET", "/api/v2/dev-inbox?" + urllib.parse.urlencode({"to": phone}),
                                        token=S["admin"]))
        msgs = msgs if isinstance(msgs, list) else msgs.get("messages", [])
        if msgs:
            return re.search(r"\d{6}", msgs[0]["text"]).group(0)
        time.sleep(0.05)
    raise Fail(f"no message to {phone} in the dev inbox within {bound} s")


def parallel(fn, items, workers):
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def kind_of(status, body):
    """A short name for an answer: the status, and for a 429 which limit refused it."""
    if status != 429:
        return status
    d = body.get("error_description", "") if isinstance(body, dict) else str(body)
    if "sent by the user" in d:
        return "429 user send limit"
    if "requested from this network" in d:
        return "429 IP throttling"
    return f"429 {d}"


def tally(results):
    out = {}
    for r in results:
        out[r] = out.get(r, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: str(kv[0])))


# --- 1. the MFA flow, every step on another node ----------------------------------------------------------------------

def test_mfa_flow():
    S["admin"] = mgmt_token(0)
    log("  node 1: Management API token")
    S["app"] = app = expect("create application", call(1, "POST", "/api/v2/clients", {
        "name": "cluster", "app_type": "regular_web", "callbacks": [CALLBACK],
        "grant_types": ["password", MFA_OOB, "authorization_code"]}, S["admin"]), 201)
    email, phone = "mfa-flow@example.com", new_phone()
    user = expect("create user", call(1, "POST", "/api/v2/users", {
        "connection": CONNECTION, "email": email, "password": PASSWORD}, S["admin"]), 201)
    S["flow_user"] = email
    log(f"  node 2: application {app['client_id']} and user {user['user_id']}")
    expect("sms factor", call(2, "PUT", "/api/v2/guardian/factors/sms", {"enabled": True}, S["admin"]))
    expect("recovery-code factor", call(2, "PUT", "/api/v2/guardian/factors/recovery-code", {"enabled": True},
                                        S["admin"]))
    expect("message types", call(2, "PUT", "/api/v2/guardian/factors/phone/message-types",
                                 {"message_types": ["sms"]}, S["admin"]))
    expect("policy", call(2, "PUT", "/api/v2/guardian/policies", ["all-applications"], S["admin"]))
    # Every request of these tests comes from 127.0.0.1: IP throttling would cap it at 50 messages (test 2 turns it
    # on for its own addresses).
    expect("IP throttling off", call(2, "PATCH", "/api/v2/attack-protection/suspicious-ip-throttling",
                                     {"enabled": False}, S["admin"]))
    log("  node 3: sms + recovery-code factors on, policy all-applications, IP throttling off")
    settle()
    got = password_grant(0, email)
    body = expect("password grant", got, 403)
    check(body.get("error") == "mfa_required", f"password grant: {body}")
    log("  node 1: password grant -> 403 mfa_required")
    a = expect("associate", call(1, "POST", "/mfa/associate", {
        "authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": phone}, body["mfa_token"]))
    check(a.get("oob_code") and a.get("recovery_codes"), f"associate answer: {a}")
    log("  node 2: /mfa/associate -> oob_code (and a recovery code)")
    code = inbox_code(2, phone)
    log(f"  node 3: code {code} from the dev inbox")
    tokens = expect("mfa-oob grant", call(0, "POST", "/oauth/token", {
        "grant_type": MFA_OOB, "client_id": app["client_id"], "client_secret": app["client_secret"],
        "mfa_token": body["mfa_token"], "oob_code": a["oob_code"], "binding_code": code}, form=True))
    check("access_token" in tokens and "id_token" in tokens, f"mfa-oob answer: {tokens}")
    log("  node 1: mfa-oob grant -> access_token, id_token")
    info = expect("userinfo on node 2", call(1, "GET", "/userinfo", token=tokens["access_token"]))
    check(info.get("sub") == user["user_id"], f"userinfo: {info}")
    admin3 = mgmt_token(2)
    uid = urllib.parse.quote(user["user_id"], safe="")
    enr = expect("enrollments on node 2", call(1, "GET", f"/api/v2/users/{uid}/enrollments", token=admin3))
    check(len(enr) == 1 and enr[0].get("status") == "confirmed", f"enrollments: {enr}")
    log("  node 2: /userinfo with the access token, and the confirmed enrollment read with a node-3 management token")


# --- 2. limits are global ----------------------------------------------------------------------------------------------

def test_send_limit():
    for label, par in (("sequential, round-robin", False), ("parallel burst of 30", True)):
        email = f"limit-{'burst' if par else 'seq'}@example.com"
        create_user(0, email, new_phone())
        mfa = mfa_token(1, email)
        n = 30 if par else 15
        def one(k):
            s, b, _ = challenge(k % N, mfa)
            return kind_of(s, b)
        res = parallel(one, range(n), 30) if par else [one(k) for k in range(n)]
        t = tally(res)
        log(f"  user {email}: {n} challenges ({label}) over {N} nodes -> {t}")
        check(t == {200: 10, "429 user send limit": n - 10},
              f"expected exactly 10 x 200 and the rest 429 'Too many SMS sent by the user', got {t}")
    # The limits are Redis's, not the database's: no bucket rows in PostgreSQL, keys under this run's prefix.
    s, f = redis_connect(CFG["redis_url"])
    with s:
        keys = redis_cmd(f, "SCAN", "0", "MATCH", CFG["redis_prefix"] + "*", "COUNT", 10000)[1]
    rows = int(sql("SELECT count(*) FROM buckets"))
    log(f"  limiter: {len(keys)} Redis keys under {CFG['redis_prefix']}, {rows} rows in PostgreSQL's buckets table")
    check(keys and rows == 0, "the limits are not in Redis")


def test_ip_throttle():
    users = [f"ip-{i}@example.com" for i in range(5)]
    parallel(lambda e: create_user(users.index(e) % N, e, new_phone()), users, 5)
    tokens = [mfa_token(i % N, e) for i, e in enumerate(users)]
    max_msgs, max_logins = 5, 3
    expect("IP throttling on", call(0, "PATCH", "/api/v2/attack-protection/suspicious-ip-throttling", {
        "enabled": True, "shields": ["block"],
        "stage": {"pre-phone-message": {"max_attempts": max_msgs, "rate": 86400000},
                  "pre-login": {"max_attempts": max_logins, "rate": 86400000}}}, S["admin"]))
    try:
        got = expect("read back", call(2, "GET", "/api/v2/attack-protection/suspicious-ip-throttling",
                                       token=S["admin"]))
        check(got["enabled"] and got["stage"]["pre-phone-message"]["max_attempts"] == max_msgs,
              f"node 3 reads {got}")
        log(f"  node 1: PATCH suspicious-ip-throttling pre-phone-message max_attempts={max_msgs}, "
            f"pre-login max_attempts={max_logins} (one a day after that)")
        settle()
        problems = []

        def msg(ip):
            def one(k):
                s, b, _ = challenge(k % N, tokens[k % len(tokens)], headers={"x-forwarded-for": ip})
                return kind_of(s, b)
            return one

        for label, ip, n, par in (("sequential, round-robin", "198.51.100.7", 12, False),
                                  ("parallel burst", "198.51.100.8", 24, True)):
            res = parallel(msg(ip), range(n), 24) if par else [msg(ip)(k) for k in range(n)]
            t = tally(res)
            log(f"  X-Forwarded-For {ip}: {n} challenges ({label}) over {N} nodes -> {t}")
            if t != {200: max_msgs, "429 IP throttling": n - max_msgs}:
                problems.append(f"{ip}: expected exactly {max_msgs} x 200, the rest 429 (network), got {t}")
            blocked = [call(i, "GET", f"/api/v2/anomaly/blocks/ips/{ip}", token=S["admin"])[0] for i in range(N)]
            log(f"    GET /anomaly/blocks/ips/{ip} on nodes 1-3: {blocked}")
            if blocked != [200] * N:
                problems.append(f"{ip} not seen blocked on every node: {blocked}")

        ip = "198.51.100.9"
        def wrong(k):
            s, b, _ = password_grant(k % N, f"nobody-{k}@example.com", "Wrong-Passw0rd",
                                     headers={"x-forwarded-for": ip})
            return f"{s} {b.get('error')}"
        t = tally(parallel(wrong, range(10), 10))
        log(f"  X-Forwarded-For {ip}: 10 wrong-password grants (parallel) over {N} nodes -> {t}")
        if t != {"403 invalid_grant": max_logins, "429 too_many_attempts": 10 - max_logins}:
            problems.append(f"pre-login: expected {max_logins} x 403 invalid_grant, the rest 429, got {t}")
        check(not problems, "; ".join(problems))
    finally:
        call(0, "PATCH", "/api/v2/attack-protection/suspicious-ip-throttling", {"enabled": False}, S["admin"])
        settle()


# --- 3. Guardian configuration, seen by the other nodes ----------------------------------------------------------------

def poll_until(fn, bound=5.0):
    """Seconds until fn() is true (polled as fast as it answers), or None."""
    t = time.monotonic()
    while time.monotonic() - t < bound:
        if fn():
            return time.monotonic() - t
        time.sleep(0.005)
    return None


def test_guardian_propagation():
    email = S["flow_user"]
    problems = []
    for writer, enabled in ((0, False), (1, True)):
        readers = [i for i in range(N) if i != writer]
        def factor_seen(i):
            def f():
                fs = expect("factors", call(i, "GET", "/api/v2/guardian/factors", token=S["admin"]))
                return next(x["enabled"] for x in fs if x["name"] == "sms") == enabled
            return f
        def grant_seen(i):
            def f():
                s, b, _ = password_grant(i, email)
                return (s == 200) if not enabled else (s == 403 and b.get("error") == "mfa_required")
            return f
        expect("PUT sms", call(writer, "PUT", "/api/v2/guardian/factors/sms", {"enabled": enabled}, S["admin"]))
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futs = {(i, kind): pool.submit(poll_until, fn(i)) for i in readers
                    for kind, fn in (("GET factors", factor_seen), ("password grant", grant_seen))}
            delays = {k: f.result() for k, f in futs.items()}
        behaviour = "200 tokens" if not enabled else "403 mfa_required"
        parts = [f"node {i + 1} {kind} {'not in 5 s' if d is None else f'{d * 1000:.0f} ms'}"
                 for (i, kind), d in delays.items()]
        log(f"  node {writer + 1}: PUT /guardian/factors/sms {{enabled: {str(enabled).lower()}}}; seen (grant -> "
            f"{behaviour}): {', '.join(parts)}")
        for (i, kind), d in delays.items():
            if d is None or d > 1.0:
                problems.append(f"node {i + 1} {kind} after {'> 5 s' if d is None else f'{d:.2f} s'}")
    check(not problems, "; ".join(problems))


# --- 4. signing-key rotation, seen by the other nodes ------------------------------------------------------------------

def test_key_rotation():
    before = mgmt_token(2)
    old_kid = jwt_part(before, 0)["kid"]
    for i in range(N):
        kids = [k["kid"] for k in expect("jwks", call(i, "GET", "/.well-known/jwks.json"))["keys"]]
        check(old_kid in kids, f"node {i + 1} JWKS {kids} lacks the current kid {old_kid}")
    t = time.monotonic()
    out = subprocess.run(node_argv(0, "admin", "rotate-signing-key"), capture_output=True, text=True, timeout=120)
    t_cmd = time.monotonic() - t
    check(out.returncode == 0, f"rotate-signing-key exited {out.returncode}: {out.stderr.strip()[-300:]}")
    m = re.search(r"new signing key (\S+) is current", out.stdout)
    check(m, f"rotate-signing-key printed {out.stdout!r}")
    new_kid = m.group(1)
    log(f"  `callsign admin rotate-signing-key` (node 1's settings) took {t_cmd:.1f} s: kid {old_kid} -> {new_kid}")

    def listed(i):
        return lambda: new_kid in [k["kid"] for k in call(i, "GET", "/.well-known/jwks.json")[1]["keys"]]
    with concurrent.futures.ThreadPoolExecutor(N) as pool:
        delays = list(pool.map(lambda i: poll_until(listed(i), 5.0), range(N)))
    log("  new kid in /.well-known/jwks.json: " + ", ".join(
        f"node {i + 1} {'not in 5 s' if d is None else f'{d * 1000:.0f} ms'}" for i, d in enumerate(delays)))
    problems = [f"node {i + 1}: {'not in 5 s' if d is None else f'{d:.2f} s'}"
                for i, d in enumerate(delays) if d is None or d > 1.0]
    kids = [k["kid"] for k in call(1, "GET", "/.well-known/jwks.json")[1]["keys"]]
    if old_kid not in kids:
        problems.append(f"the old kid is no longer published on node 2: {kids}")
    after = mgmt_token(2)
    kid3 = jwt_part(after, 0)["kid"]
    log(f"  a token issued by node 3 afterwards: kid {kid3} ({'new' if kid3 == new_kid else 'OLD'})")
    if kid3 != new_kid:
        problems.append(f"node 3 still signs with {kid3}, not {new_kid}")
    s2 = call(1, "GET", "/api/v2/users?per_page=1", token=after)[0]
    s_old = call(1, "GET", "/api/v2/users?per_page=1", token=before)[0]
    log(f"  node 2 accepts it: {s2}; and the token signed before the rotation: {s_old}")
    if s2 != 200 or s_old != 200:
        problems.append(f"node 2 answered {s2} to the new token and {s_old} to the old one")
    check(not problems, "; ".join(problems))


# --- 5. Universal Login, each page load on another node ----------------------------------------------------------------

class Forms(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get"), "fields": {}})
        elif tag in ("input", "button") and self.forms and a.get("name"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a and tag == "input":
                self.forms[-1].setdefault("boxes", {})[a["name"]] = a.get("value", "on")
            elif tag == "input":
                self.forms[-1]["fields"].setdefault(a["name"], a.get("value", ""))


def forms(page):
    p = Forms()
    p.feed(page)
    return p.forms


class Browser:
    """One cookie jar (cookies ignore ports: one host, 127.0.0.1), no redirects followed."""

    def __init__(self):
        self.jar = {}
        self.trail = []

    def go(self, node, url, form=None):
        u = urllib.parse.urlsplit(url)
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        h = {"accept": "text/html"}
        if self.jar:
            h["cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        s, body, rh = call(node, "POST" if form is not None else "GET", path, body=form, form=True, headers=h,
                           raw=True)
        for c in rh["set-cookie"]:
            name, _, value = c.split(";")[0].partition("=")
            if re.search(r"max-age=0|expires=thu, 01 jan 1970", c, re.I):
                self.jar.pop(name.strip(), None)
            else:
                self.jar[name.strip()] = value.strip()
        loc = rh.get("location")
        loc = urllib.parse.urljoin(f"http://127.0.0.1:{NODES[node]['port']}{path}", loc) if loc else None
        self.trail.append(f"{'POST' if form is not None else 'GET'} {u.path} (node {node + 1}) -> {s}")
        return s, body, loc


def test_universal_login():
    email, phone = "ul-walk@example.com", new_phone()
    create_user(0, email)
    app = S["app"]
    verifier = secrets.token_urlsafe(48)
    chal = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    q = urllib.parse.urlencode({"response_type": "code", "client_id": app["client_id"], "redirect_uri": CALLBACK,
                                "scope": "openid email", "state": "st-1", "nonce": "n-1", "code_challenge": chal,
                                "code_challenge_method": "S256"})
    b = Browser()
    nodes = iter(k % N for k in range(100))
    s, page, loc = b.go(next(nodes), f"/authorize?{q}")
    check(s == 302 and loc and "/u/login" in loc, f"/authorize: {s} {loc} {page[:200]}")
    steps = 0
    code = None
    while steps < 12:
        steps += 1
        if loc.startswith(CALLBACK):
            code = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query).get("code", [None])[0]
            check(urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query).get("state") == ["st-1"], f"state in {loc}")
            break
        s, page, loc2 = b.go(next(nodes), loc)
        check(s == 200, f"GET {loc}: {s} {page[:300]}")
        fs = [f for f in forms(page) if f["method"].lower() == "post" and "csrf" in f["fields"]]
        check(fs, f"no form on {loc}: {page[:300]}")
        path = urllib.parse.urlsplit(loc).path
        f = fs[0]
        fields = dict(f["fields"])
        if path.endswith("/u/login"):
            fields.update(email=email, password=PASSWORD)
        elif path.endswith("/u/mfa/enroll"):
            fields.update(country="US", phone=phone[2:], channel="sms")
        elif path.endswith("/u/mfa/code"):
            inbox_node = next(nodes)
            fields.update(code=inbox_code(inbox_node, phone))
            b.trail.append(f"GET /api/v2/dev-inbox (node {inbox_node + 1}): the code")
        else:
            fields.update(f.get("boxes", {}))  # e.g. the recovery code page: "I have saved the code"
        action = urllib.parse.urljoin(loc, f["action"] or loc)
        s, page, loc = b.go(next(nodes), action, form=fields)
        check(s in (302, 303) and loc, f"POST {action}: {s} {page[:300]}")
    check(code, f"no code after {steps} pages: {b.trail}")
    tn = next(nodes)
    tokens = expect(f"code exchange on node {tn + 1}", call(tn, "POST", "/oauth/token", {
        "grant_type": "authorization_code", "client_id": app["client_id"], "client_secret": app["client_secret"],
        "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier}, form=True))
    idt = jwt_part(tokens["id_token"], 1)
    un = next(nodes)
    info = expect(f"userinfo on node {un + 1}", call(un, "GET", "/userinfo", token=tokens["access_token"]))
    b.trail += [f"POST /oauth/token authorization_code (node {tn + 1}) -> 200", f"GET /userinfo (node {un + 1}) -> 200"]
    for line in b.trail:
        log(f"  {line}")
    check(idt.get("email") == email and idt.get("amr") == ["pwd", "mfa"] and idt.get("nonce") == "n-1",
          f"id_token claims {idt}")
    check(info.get("email") == email, f"userinfo {info}")
    log(f"  id_token: email {idt['email']}, amr {idt['amr']}, iss {idt['iss']}")


def test_dashboard():
    """The operator dashboard with each request on another node: the setup link, the session, a form's CSRF token
    and the sign-out are all in the database, not in the node that issued them."""
    boot = json.load(open(os.path.join(NODES[0]["data_dir"], "bootstrap-credentials.json")))
    setup = urllib.parse.urlsplit(boot["dashboard_setup_url"]).path
    b = Browser()
    nodes = iter(k % N for k in range(1, 100))  # starts on node 2
    s, page, _ = b.go(next(nodes), setup)
    check(s == 200, f"setup link: {s} {page[:300]}")
    f = [f for f in forms(page) if "csrf" in f["fields"]][0]
    fields = dict(f["fields"], email="operator@example.com", password=PASSWORD)
    s, page, loc = b.go(next(nodes), urllib.parse.urljoin(setup, f["action"] or setup), form=fields)
    check(s in (302, 303) and loc and "/dashboard" in loc, f"setup POST: {s} {loc} {page[:300]}")
    s, page, _ = b.go(next(nodes), "/dashboard/settings")
    check(s == 200, f"settings page with the session made on another node: {s} {page[:300]}")
    f = [f for f in forms(page) if f["action"].endswith("/dashboard/settings/tenant")][0]
    name = f"Cluster tenant {secrets.token_hex(3)}"
    fields = dict(f["fields"], friendly_name=name, support_email="ops@example.com", support_url="",
                  default_locale="en")
    s, page, loc = b.go(next(nodes), "/dashboard/settings/tenant", form=fields)
    check(s in (302, 303), f"tenant form (CSRF token from another node): {s} {page[:300]}")
    n = next(nodes)
    t = expect("tenant settings", call(n, "GET", "/api/v2/tenants/settings", token=mgmt_token(n)))
    check(t.get("friendly_name") == name, f"the change made through the dashboard: {t.get('friendly_name')}")
    b.trail.append(f"GET /api/v2/tenants/settings (node {n + 1}): friendly_name {name!r}")
    s, page, _ = b.go(next(nodes), "/dashboard/settings")
    f = [f for f in forms(page) if f["action"].endswith("/dashboard/logout")][0]
    s, page, loc = b.go(next(nodes), "/dashboard/logout", form=dict(f["fields"]))
    check(s in (302, 303), f"sign out: {s} {page[:300]}")
    s, page, loc = b.go(next(nodes), "/dashboard/settings")
    check(s in (302, 303) and loc and "/dashboard/login" in loc, f"after sign-out, on another node: {s} {loc}")
    for line in b.trail:
        log(f"  {line.replace(setup, '/dashboard/setup/…')}")  # the one-time token stays out of the output


# --- 6. a challenge stream across a SIGKILL of node 2 ------------------------------------------------------------------

def make_users(prefix, n, workers=6):
    """n users with a confirmed phone each, and an mfa_token each (spread over the nodes)."""
    def one(k):
        email = f"{prefix}-{k}@example.com"
        create_user(k % N, email, new_phone())
        return mfa_token((k + 2) % N, email)
    return parallel(one, range(n), workers)


def test_kill_stream():
    users = env_int("CALLSIGN_TEST_CLUSTER_STREAM_USERS", 30)
    per_user, concurrency, rate, kills = 8, 12, 30, 2
    t = time.monotonic()
    tokens = make_users("stream", users)
    tasks = [(tokens[u], k * users + u) for k in range(per_user) for u in range(users)]
    log(f"  {users} users ready in {time.monotonic() - t:.1f} s; streaming {len(tasks)} challenges over nodes 1-3, "
        f"{concurrency} at a time, at most {rate}/s; node 2 SIGKILLed and restarted {kills} times (lease 3 s)")
    lock = threading.Lock()
    answered, other = [], {}
    counts = {"started": 0, "no_answer": 0, "refused_retried": 0, "per_node": [0] * N}
    pace = {"next": time.monotonic()}

    def one(task):
        mfa, k = task
        with lock:
            slot = pace["next"] = max(pace["next"], time.monotonic()) + 1 / rate
            counts["started"] += 1
        time.sleep(max(0.0, slot - time.monotonic()))
        node = k % N
        for _ in range(2 * N):
            try:
                s, b, _ = challenge(node, mfa)
                break
            except Refused:
                with lock:
                    counts["refused_retried"] += 1
                node = (node + 1) % N
            except OSError:
                with lock:
                    counts["no_answer"] += 1  # in flight at the kill: committed or not, it proves nothing
                return
        else:
            with lock:
                other["every node refused"] = other.get("every node refused", 0) + 1
            return
        with lock:
            counts["per_node"][node] += 1
            if s == 200:
                answered.append(b["oob_code"])
            else:
                key = f"{s} {b.get('error') if isinstance(b, dict) else b}"
                other[key] = other.get(key, 0) + 1

    crashes, errors = [], []

    def killer():
        try:
            for r in range(kills):
                while counts["started"] < (r + 1) * len(tasks) // (kills + 1):
                    time.sleep(0.005)
                # Kill at a moment when delivery jobs are unfinished (waiting at most 2 s for one), keep the node down
                # for a second (requests to it are refused and retried elsewhere), then restart it.
                wait_unfinished(2)
                t0 = time.monotonic()
                kill_node(1)
                left = unfinished_jobs()
                time.sleep(DOWN_SECS)
                start_node(1)
                crashes.append({"answered_before": len(answered), "unfinished": left,
                                "down_secs": time.monotonic() - t0})
        except BaseException as e:
            errors.append(e)

    kt = threading.Thread(target=killer)
    kt.start()
    t_stream = time.monotonic()
    parallel(one, tasks, concurrency)
    kt.join()
    if errors:
        raise errors[0]
    stream_secs = time.monotonic() - t_stream
    drained = wait_drained(60)
    jobs = sql_json(
        "SELECT COALESCE(json_agg(json_build_array(j.challenge_id, j.status, m.id, "
        "(SELECT count(*) FROM dev_messages d WHERE d.to_number = m.to_number AND d.body = m.body))), '[]') "
        "FROM delivery_jobs j LEFT JOIN dev_messages m "
        "ON m.id = (j.details::json -> 'provider_response' ->> 'message_id') WHERE j.challenge_id IS NOT NULL")
    by = {c: (s, mid, copies) for c, s, mid, copies in jobs}
    once = dup = 0
    lost = []
    for oob in answered:
        s, mid, copies = by.get(hashlib.sha256(oob.encode()).hexdigest(), (None, None, 0))
        if s != "sent" or not mid or not copies:
            lost.append((oob[:12] + "...", s, mid))
        elif copies == 1:
            once += 1
        else:
            dup += 1
    for i, c in enumerate(crashes, 1):
        log(f"  kill {i} of node 2: after {c['answered_before']} answers, {c['unfinished']} jobs unfinished; "
            f"down {DOWN_SECS:.0f} s, then restarted: serving again {c['down_secs']:.1f} s after the kill")
    log(f"  {counts['started']} challenges in {stream_secs:.1f} s: answered 200 {len(answered)}, no answer (in flight "
        f"on node 2 at a kill) {counts['no_answer']}, connection refused by node 2 and retried on another node "
        f"{counts['refused_retried']}, other answers {other or 0}; answered per node {counts['per_node']}")
    log(f"  delivered once {once}, duplicates {dup}, lost {len(lost)}; queue drained "
        f"{'not in 60 s' if drained is None else f'{drained:.1f} s'} after the stream")
    problems = []
    if lost:
        problems.append(f"{len(lost)} answered challenges were not delivered: {lost[:5]}")
    if drained is None:
        problems.append("the delivery queue did not drain")
    if other:
        problems.append(f"unexpected answers: {other}")
    if len(crashes) != kills or not answered:
        problems.append("the kills did not land mid-stream")
    check(not problems, "; ".join(problems))


# --- 7. throughput for 1, 2 and 3 nodes --------------------------------------------------------------------------------

def test_throughput():
    secs = float(os.environ.get("CALLSIGN_TEST_CLUSTER_PHASE_SECS", "") or 5)
    concurrency = 16
    # Each user may get 10 messages an hour: a pool of users per phase, sized from a first short measurement.
    t = time.monotonic()
    per_phase = env_int("CALLSIGN_TEST_CLUSTER_PHASE_USERS", 0)
    if not per_phase:
        probe = make_users("probe", 8)
        t0 = time.monotonic()
        res = parallel(lambda k: challenge(k % N, probe[k % 8], keepalive=True)[0], range(80), concurrency)
        rate = 80 / (time.monotonic() - t0)
        check(res.count(200) == 80, f"probe challenges: {tally(res)}")
        per_phase = int(rate * secs * 1.6 / 10) + 8
        log(f"  probe: {rate:.0f} challenges/s over 3 nodes; {per_phase} users per phase")
    pools = [make_users(f"tp{n}", per_phase) for n in (1, 2, 3)]
    log(f"  {3 * per_phase} users ready in {time.monotonic() - t:.1f} s")
    wait_drained(30)
    # pg_stat_database is updated by each backend at most once a second, and a backend that went idle right after
    # a flush reports the rest up to 10 s later: so read xact_commit only after 11 quiet seconds, and subtract the
    # background (delivery workers polling, the key watchers) measured over the same kind of quiet window.
    time.sleep(11)
    c0, r0, b0 = xact_commits(), redis_total_calls(), time.monotonic()
    time.sleep(4)
    c1, r1, b1 = xact_commits(), redis_total_calls(), time.monotonic()
    bg_commits, bg_redis = (c1 - c0) / (b1 - b0), (r1 - r0) / (b1 - b0)
    log(f"  background, idle cluster: {bg_commits:.1f} PostgreSQL commits/s (subtracted), {bg_redis:.1f} Redis "
        f"commands/s")
    rows, problems = [], []
    for n, pool in zip((1, 2, 3), pools):
        budget = [(pool[u], k) for k in range(10) for u in range(len(pool))]
        it = iter(budget)
        lock = threading.Lock()
        res, lat = {}, []
        mon = RedisMonitor()
        c_start, r_start, t_start = xact_commits(), redis_total_calls(), time.monotonic()
        stop = t_start + secs

        def worker(w):
            node = w % n
            while time.monotonic() < stop:
                with lock:
                    task = next(it, None)
                if task is None:
                    return
                t_req = time.monotonic()
                s = challenge(node, task[0], keepalive=True)[0]
                with lock:
                    res[s] = res.get(s, 0) + 1
                    lat.append(time.monotonic() - t_req)
                node = (node + 1) % n
        parallel(worker, range(concurrency), concurrency)
        elapsed = time.monotonic() - t_start
        ok = res.get(200, 0)
        drain = wait_drained(30)
        r_end = redis_total_calls()
        ours = mon.stop()
        time.sleep(max(0.0, 11 - (time.monotonic() - t_start - elapsed)))
        c_end, t_end = xact_commits(), time.monotonic()
        window = t_end - t_start
        commits = (c_end - c_start - bg_commits * window) / max(ok, 1)
        rcmds = (r_end - r_start - 1) / max(ok, 1)
        rours = ours / max(ok, 1)
        lat.sort()
        p50, p99 = (lat[int(len(lat) * q)] * 1000 if lat else 0 for q in (0.5, 0.99))
        rows.append((n, ok, elapsed, ok / elapsed, p50, p99, commits, rours, rcmds, drain))
        if set(res) != {200}:
            problems.append(f"{n} node(s): answers {res}")
        if ok == len(budget):
            log(f"  ({n} node(s): the user pool ran out before {secs:.0f} s)")
    log("  nodes | challenges | secs | challenges/s | p50 ms | p99 ms | PG commits/ch | Redis cmds/ch | "
        "(all of Redis) | queue drained")
    for n, ok, el, rate, p50, p99, cm, ro, rc, dr in rows:
        log(f"  {n:5d} | {ok:10d} | {el:4.1f} | {rate:12.1f} | {p50:6.0f} | {p99:6.0f} | {cm:13.2f} | {ro:13.2f} | "
            f"{rc:14.2f} | {'-' if dr is None else f'{dr:.1f} s after'}")
    log(f"  ch = challenge answered 200 (its delivery included: the counts run until the queue is drained). "
        f"Concurrency {concurrency}, keep-alive connections, challenges only (a verify needs the code from the inbox and "
        f"spends the mfa_token, so each pair would also need a password grant). PG commits: xact_commit of this "
        f"database, idle background subtracted. Redis cmds: MONITOR, the requests of these nodes' connections (a Lua "
        f"script call is one); all of Redis: the INFO commandstats delta, every client, commands inside scripts "
        f"counted too. {os.cpu_count()} CPU cores shared by the nodes, "
        f"PostgreSQL, Redis and this client: the table shows the cost of more nodes, not scaling.")
    check(not problems, "; ".join(problems))


# --- 8. what one node costs per request, counted on the wire ---------------------------------------------------------

def delivery_sql(q):
    """The statements of the delivery queue and the development provider's inbox (the rest are the request's own)."""
    return "delivery" if re.search(r"\b(delivery_jobs|dev_messages)\b", q) else None


def test_costs():
    """A fourth node, whose PostgreSQL and Redis connections go through counting proxies (wire_count.py), serves a
    login, a challenge and a verify for each of K users, one kind of request per phase, while nodes 1-3 are stopped
    (SIGSTOP), so that every statement, Redis command and CPU second of the phase is this node's. Its idle background
    (the delivery workers' polling, the key watcher) is measured first and subtracted."""
    k = env_int("CALLSIGN_TEST_CLUSTER_COST_USERS", 60)
    conc = 4
    users = [(f"cost-{j}@example.com", new_phone()) for j in range(k)]
    parallel(lambda j: create_user(j % N, *users[j]), range(k), 6)
    wait_drained(30)

    db = urllib.parse.urlsplit(DB_URL)
    rd = urllib.parse.urlsplit(CFG["redis_url"])
    pg = wire_count.PgCounter(db.hostname or "127.0.0.1", db.port or 5432, tag=delivery_sql)
    rc = wire_count.RedisCounter(rd.hostname or "127.0.0.1", rd.port or 6379)
    work = CFG["work"]
    with open(f"{work}/cost-database-url", "w") as f:
        f.write(urllib.parse.urlunsplit(db._replace(netloc=f"{db.netloc.rsplit('@', 1)[0] + '@' if '@' in db.netloc else ''}"
                                                   f"127.0.0.1:{pg.port}", query="sslmode=disable")) + "\n")
    with open(f"{work}/cost-redis-url", "w") as f:
        f.write(urllib.parse.urlunsplit(rd._replace(netloc=f"{rd.netloc.rsplit('@', 1)[0] + '@' if '@' in rd.netloc else ''}"
                                                   f"127.0.0.1:{rc.port}")) + "\n")
    os.chmod(f"{work}/cost-database-url", 0o600)
    os.chmod(f"{work}/cost-redis-url", 0o600)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        mport = s.getsockname()[1]
    text = open(NODES[0]["config"]).read()
    for key, value in {"listen": f'"127.0.0.1:{port}"', "data_dir": f'"{work}/node-cost"',
                       "database_url_file": f'"{work}/cost-database-url"', "redis_url_file": f'"{work}/cost-redis-url"',
                       "metrics_addr": f'"127.0.0.1:{mport}"'}.items():
        text, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.M)
        check(n == 1, f"node 1's settings have no single '{key} = ' line")
    os.makedirs(f"{work}/node-cost", exist_ok=True)
    with open(f"{work}/node-cost.toml", "w") as f:
        f.write(text)
    NODES.append({"port": port, "data_dir": f"{work}/node-cost", "log": f"{work}/node-cost.log",
                  "config": f"{work}/node-cost.toml"})
    m = len(NODES) - 1
    stopped = []
    try:
        start_node(m)
        for i in range(N):
            os.kill(NODES[i]["pid"], signal.SIGSTOP)
            stopped.append(i)
        redis_pid = int(re.search(r"process_id:(\d+)", redis_info_server()).group(1))

        def db_backends():
            ports = ",".join(str(p) for p in pg.upstream_ports) or "0"
            return [int(x) for x in sql(f"SELECT pid FROM pg_stat_activity WHERE client_port IN ({ports})").split()]

        def sample():
            backends = db_backends()
            return {"t": time.monotonic(), "pg": pg.snapshot(), "redis": rc.snapshot(), "redis_usec": redis_usec(),
                    "cpu": wire_count.process_cpu_secs(NODES[m]["pid"]),
                    "db_cpu": sum(wire_count.process_cpu_secs(p) or 0 for p in backends),
                    "backends": set(backends), "redis_cpu": wire_count.process_cpu_secs(redis_pid)}

        def delta(a, b):
            check(a["backends"] == b["backends"], "the node opened or closed database connections mid-phase; "
                  "their CPU would be miscounted")
            d = {"secs": b["t"] - a["t"], "cpu": b["cpu"] - a["cpu"], "db_cpu": b["db_cpu"] - a["db_cpu"],
                 "redis_cpu": b["redis_cpu"] - a["redis_cpu"], "redis_usec": b["redis_usec"] - a["redis_usec"]}
            for src in ("pg", "redis"):
                for key in set(a[src]) | set(b[src]):
                    d[f"{src}.{key}"] = b[src].get(key, 0) - a[src].get(key, 0)
            return d

        # Warm the node's pools (every connection opened) and caches, then its idle background over 6 s.
        mfa_warm = [expect("warm-up login", password_grant(m, users[j][0]), 403)["mfa_token"] for j in range(2)]
        parallel(lambda t: challenge(m, t), mfa_warm * 4, 8)
        wait_drained(30)
        time.sleep(1)
        a = sample()
        time.sleep(6)
        idle = delta(a, sample())
        rate = {key: v / idle["secs"] for key, v in idle.items() if key != "secs"}

        phases, out = {}, {}

        def phase(name, fn, items, drain=False, workers=conc):
            a = sample()
            res = parallel(fn, items, workers)
            if drain:
                check(wait_drained(30) is not None, f"{name}: the delivery queue did not drain")
            d = delta(a, sample())
            phases[name] = {key: (v - rate.get(key, 0) * d["secs"]) / len(items) for key, v in d.items()
                            if key != "secs"}
            phases[name]["secs"] = d["secs"]
            return res

        logins = phase("login (password grant, answered mfa_required)",
                       lambda u: password_grant(m, u[0]), users, workers=2)
        check(all(s == 403 and b.get("mfa_token") for s, b, _ in logins), f"logins: {tally([r[0] for r in logins])}")
        mfa = [b["mfa_token"] for _, b, _ in logins]
        chals = phase("challenge (its SMS delivered)", lambda t: challenge(m, t), mfa, drain=True)
        check(all(s == 200 and b.get("oob_code") for s, b, _ in chals), f"challenges: {tally([r[0] for r in chals])}")
        codes = {}
        for (_, phone), (_, b, _) in zip(users, chals):
            body = sql(f"SELECT body FROM dev_messages WHERE to_number = '{phone}' ORDER BY seq DESC LIMIT 1")
            codes[b["oob_code"]] = re.search(r"\d{6}", body).group(0)
        app = S["app"]
        verifies = phase("verify (mfa-oob grant: access and ID token)", lambda j: call(m, "POST", "/oauth/token", {
            "grant_type": MFA_OOB, "client_id": app["client_id"], "client_secret": app["client_secret"],
            "mfa_token": mfa[j], "oob_code": chals[j][1]["oob_code"],
            "binding_code": codes[chals[j][1]["oob_code"]]}, form=True), range(k))
        check(all(s == 200 and "access_token" in b for s, b, _ in verifies),
              f"verifies: {tally([r[0] for r in verifies])}")
    finally:
        for i in stopped:
            os.kill(NODES[i]["pid"], signal.SIGCONT)
        if NODES[m].get("pid"):
            os.kill(NODES[m]["pid"], signal.SIGKILL)
            NODES[m]["proc"].wait()
        NODES.pop()
        pg.close()
        rc.close()

    log(f"  one node ({os.path.basename(os.path.dirname(CFG['bin']))} build: {CFG['bin']}), {k} users, concurrency {conc}; nodes 1-3 stopped; per request, idle background "
        f"subtracted (per second: {rate['pg.statements']:.1f} statements, {rate['pg.transactions']:.1f} transactions, "
        f"{rate['redis.commands']:.1f} Redis commands, {rate['cpu'] * 1000:.1f} ms node CPU)")
    cols = [("PG statements", "pg.statements", 1, "{:.1f}"), ("of them writes", "pg.writes", 1, "{:.1f}"),
            ("delivery/inbox", "pg.delivery", 1, "{:.1f}"), ("BEGIN/COMMIT", "pg.tx_control", 1, "{:.1f}"),
            ("PG round trips", "pg.round_trips", 1, "{:.1f}"), ("of them prepares", "pg.prepares", 1, "{:.1f}"),
            ("of them bare syncs", "pg.empty_syncs", 1, "{:.1f}"), ("transactions", "pg.transactions", 1, "{:.1f}"),
            ("write tx (WAL flush)", "pg.write_transactions", 1, "{:.1f}"),
            ("Redis commands", "redis.commands", 1, "{:.2f}"), ("node CPU ms", "cpu", 1000, "{:.2f}"),
            ("PG backend CPU ms", "db_cpu", 1000, "{:.2f}"), ("Redis CPU ms", "redis_cpu", 1000, "{:.3f}"),
            ("Redis command time us", "redis_usec", 1, "{:.0f}")]
    log("  request | " + " | ".join(c[0] for c in cols) + " | phase secs")
    for name, ph in phases.items():
        log(f"  {name} | " + " | ".join(fmt.format(ph.get(key, 0) * scale) for _, key, scale, fmt in cols)
            + f" | {ph['secs']:.1f}")
    redis_names = sorted({key for ph in phases.values() for key in ph if key.startswith("redis.")
                          and key != "redis.commands" and abs(ph[key]) > 0.005})
    for name, ph in phases.items():
        log(f"  Redis commands by name, {name.split(' ')[0]}: "
            + ", ".join(f"{key[6:]} {ph.get(key, 0):.2f}" for key in redis_names))
    log("  Counted on the wire by proxies between this node and PostgreSQL / Redis (sdk-tests/cluster/wire_count.py). "
        "Statements: Execute and simple Query messages other than BEGIN/COMMIT/ROLLBACK; writes are INSERT, UPDATE, "
        "DELETE; a write transaction is one that flushes WAL at commit; CPU from /proc/PID/stat (10 ms ticks): the "
        "node, this node's PostgreSQL backends (not the WAL writer), and the whole redis-server; Redis command time: the "
        "usec of INFO commandstats (the time Redis spent running commands, scripts included), every client.")


def redis_usec():
    """The time Redis has spent running commands (INFO commandstats), in microseconds, every client."""
    s, f = redis_connect(CFG["redis_url"])
    with s:
        info = redis_cmd(f, "INFO", "commandstats")
    return sum(int(m) for m in re.findall(r"usec=(\d+)", info))


def redis_info_server():
    s, f = redis_connect(CFG["redis_url"])
    with s:
        return redis_cmd(f, "INFO", "server")


# --- the run -----------------------------------------------------------------------------------------------------------

TESTS = [
    ("1 MFA flow, each step on another node", test_mfa_flow),
    ("2a send limit is global (10 per user per hour)", test_send_limit),
    ("2b suspicious IP throttling is global", test_ip_throttle),
    ("3 Guardian change seen by the other nodes within 1 s", test_guardian_propagation),
    ("4 signing-key rotation seen by the other nodes within 1 s", test_key_rotation),
    ("5 Universal Login, each page on another node", test_universal_login),
    ("5b the dashboard, each request on another node", test_dashboard),
    ("6 challenge stream across SIGKILLs of node 2: nothing lost", test_kill_stream),
    ("7 throughput on 1, 2 and 3 nodes", test_throughput),
    ("8 what one node costs per login, challenge and verify", test_costs),
]


def main():
    only = os.environ.get("CALLSIGN_TEST_CLUSTER_ONLY", "")
    passed = failed = 0
    for name, fn in TESTS:
        if only and name.split()[0] not in only.split(","):
            continue
        t = time.monotonic()
        log(f"== {name}")
        try:
            fn()
            passed += 1
            log(f"PASS {name} ({time.monotonic() - t:.1f} s)")
        except Fail as e:
            failed += 1
            log(f"FAIL {name} ({time.monotonic() - t:.1f} s): {e}")
        except Exception as e:  # a broken step (no answer, a crash of the client): the test fails, the run goes on
            failed += 1
            log(f"FAIL {name} ({time.monotonic() - t:.1f} s): {type(e).__name__}: {e}")
            traceback.print_exc(file=sys.stdout)
        if name.startswith("1 ") and "admin" not in S:
            log("cannot go on without the setup of test 1")
            break
    log(f"cluster: {passed} passed, {failed} failed ({time.monotonic() - T_START:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
