#!/usr/bin/env python3
"""Crash durability, one backend: stream MFA challenges at a real Callsign, SIGKILL it mid-stream (at a moment when
delivery jobs are unfinished) and restart it on the same database, a few times along the stream; wait for the
delivery queue to drain, then check that every challenge answered 200 was delivered: its job
(`delivery_jobs.challenge_id` = SHA-256 hex of the oob_code) ended `sent`, and the development inbox holds the
message the job recorded. Duplicates (messages beyond one per sent job: sends that finished just before a kill,
before their outcome was recorded) are counted and printed. Exit 1 if anything was lost.

Log streams too: an `http` log stream (JSONARRAY, from the start of the log) sends every event to a local sink in
this process, which is slow enough that the stream is behind at each kill (its lag, read from the database, is
printed). Once the queue drained, the sink must have every event of the `logs` table; events it got twice (a batch
the sink took just before a kill, before the cursor moved) are counted and printed.

Usage: crash.py NAME DATABASE_URL WORKDIR     (python3 standard library only; run by run.sh)
Environment: CALLSIGN_TEST_BIN (the callsign binary); optional CALLSIGN_TEST_CRASH_USERS (default 50),
CALLSIGN_TEST_CRASH_PER_USER (challenges per user, default 8: with the enrollment message that is 9 of the 10
messages a user may get per hour), CALLSIGN_TEST_CRASH_CONCURRENCY (default 16),
CALLSIGN_TEST_CRASH_KILLS (SIGKILLs along the stream, default 3), CALLSIGN_TEST_CRASH_RATE (challenges started per
second at most, default 25: the stream then lasts long enough for each restart to recover before the next kill).
"""
import concurrent.futures
import hashlib
import http.server
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

LEASE_SECS = 3
DRAIN_BOUND_SECS = 60
MFA_OOB = "http://auth0.com/oauth/grant-type/mfa-oob"
PASSWORD = "Crash-Passw0rd"


def env_int(name, default):
    return int(os.environ.get(name, "") or default)


NAME, DB_URL, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
BIN = os.environ["CALLSIGN_TEST_BIN"]
USERS = env_int("CALLSIGN_TEST_CRASH_USERS", 50)
PER_USER = env_int("CALLSIGN_TEST_CRASH_PER_USER", 8)
CONCURRENCY = env_int("CALLSIGN_TEST_CRASH_CONCURRENCY", 16)
ROUNDS = env_int("CALLSIGN_TEST_CRASH_KILLS", 3)
RATE = env_int("CALLSIGN_TEST_CRASH_RATE", 25)
DATA = os.path.join(WORK, "data")
PIDFILE = os.path.join(WORK, "pids")


def log(msg):
    print(f"[{NAME}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORT = free_port()
BASE = f"http://127.0.0.1:{PORT}"


# --- the log stream's sink ---------------------------------------------------------------------------------------------

SINK_DELAY_SECS = 0.05
received = []
received_lock = threading.Lock()


class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        time.sleep(SINK_DELAY_SECS)
        try:
            ids = [e["log_id"] for e in json.loads(body)]
        except (ValueError, KeyError, TypeError):
            self.send_response(400)
            self.end_headers()
            return
        with received_lock:
            received.extend(ids)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


SINK = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
threading.Thread(target=SINK.serve_forever, daemon=True).start()
SINK_URL = f"http://127.0.0.1:{SINK.server_address[1]}/logs"


def stream_lag():
    """Events after the stream's cursor, read from the database."""
    where = ("FROM logs, log_streams WHERE logs.tx > log_streams.cursor_tx OR "
             "(logs.tx = log_streams.cursor_tx AND logs.seq > log_streams.cursor_seq)")
    return sql_json(f"SELECT CAST(COUNT(*) AS TEXT) {where}", f"SELECT COUNT(*) {where}")


def all_log_ids():
    return sql_json("SELECT COALESCE(json_group_array(log_id), '[]') FROM logs",
                    "SELECT COALESCE(json_agg(log_id), '[]') FROM logs")


# --- HTTP ------------------------------------------------------------------------------------------------------------

def call(method, path, body=None, token=None, form=False, timeout=30):
    """(status, parsed body). Connection failures raise OSError (urllib's URLError is one)."""
    headers = {}
    data = None
    if body is not None:
        if form:
            data = urllib.parse.urlencode(body).encode()
            headers["content-type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def expect(what, got, status=200):
    if got[0] != status:
        raise SystemExit(f"[{NAME}] {what}: expected {status}, got {got[0]}: {got[1]}")
    return got[1]


# --- the database, read directly ---------------------------------------------------------------------------------------

def sql_json(query_sqlite, query_postgres):
    """One JSON value computed by the database."""
    if DB_URL.startswith("sqlite://"):
        con = sqlite3.connect(DB_URL[len("sqlite://"):], timeout=10)
        try:
            return json.loads(con.execute(query_sqlite).fetchone()[0])
        finally:
            con.close()
    out = subprocess.run(["psql", DB_URL, "-Atqc", query_postgres], check=True, capture_output=True, text=True,
                         timeout=30)
    return json.loads(out.stdout.strip())


def unfinished():
    """The ids of the jobs not yet ended: {id: status} (`pending` or `running`)."""
    return dict(sql_json(
        "SELECT COALESCE(json_group_array(json_array(id, status)), '[]') FROM delivery_jobs "
        "WHERE status IN ('pending', 'running')",
        "SELECT COALESCE(json_agg(json_build_array(id, status)), '[]') FROM delivery_jobs "
        "WHERE status IN ('pending', 'running')"))


def jobs_and_messages():
    jobs = sql_json(
        "SELECT COALESCE(json_group_array(json_array(challenge_id, status, details)), '[]') FROM delivery_jobs",
        "SELECT COALESCE(json_agg(json_build_array(challenge_id, status, details)), '[]') FROM delivery_jobs")
    ids = sql_json("SELECT COALESCE(json_group_array(id), '[]') FROM dev_messages",
                   "SELECT COALESCE(json_agg(id), '[]') FROM dev_messages")
    return jobs, ids


# --- the server --------------------------------------------------------------------------------------------------------

def start_server(tag):
    logf = open(os.path.join(WORK, f"server-{NAME}-{tag}.log"), "ab")
    env = dict(os.environ, CALLSIGN_DELIVERY_LEASE_SECS=str(LEASE_SECS), CALLSIGN_DEV_PROVIDER_CAP="1000000",
               CALLSIGN_LOG_LEVEL="warn", CALLSIGN_LOG_STREAMS__LEASE_MS=str(LEASE_SECS * 1000),
               CALLSIGN_LOG_STREAMS__BATCH_SIZE="20", CALLSIGN_LOG_STREAMS__BATCH_AGE_MS="200",
               CALLSIGN_LOG_STREAMS__POLL_MS="100", CALLSIGN_LOG_STREAMS__BACKOFF_BASE_MS="200",
               CALLSIGN_LOG_STREAMS__SEND_TIMEOUT_MS="1500")
    p = subprocess.Popen([BIN, "--database-url", DB_URL, "--data-dir", DATA, "--listen", f"127.0.0.1:{PORT}", "serve"],
                         env=env, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
    with open(PIDFILE, "a") as f:
        f.write(f"{p.pid}\n")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise SystemExit(f"[{NAME}] the server exited ({p.returncode}); see {logf.name}")
        try:
            if call("GET", "/readyz", timeout=2)[0] == 200:
                return p
        except OSError:
            pass
        time.sleep(0.05)
    p.kill()
    raise SystemExit(f"[{NAME}] the server was not ready in 60 s; see {logf.name}")


# --- setup through the Management API ---------------------------------------------------------------------------------

def management_token():
    with open(os.path.join(DATA, "bootstrap-credentials.json")) as f:
        c = json.load(f)
    return expect("management token", call("POST", "/oauth/token", {
        "grant_type": "client_credentials", "client_id": c["client_id"], "client_secret": c["client_secret"],
        "audience": c["audience"]}))["access_token"]


def login(app, email):
    got = call("POST", "/oauth/token", {"grant_type": "password", "client_id": app["client_id"],
                                        "client_secret": app["client_secret"], "username": email,
                                        "password": PASSWORD, "scope": "openid"})
    return expect(f"password grant for {email}", got, 403)["mfa_token"]


def enroll(admin, app, i):
    """A user with a confirmed phone; returns a fresh mfa_token for challenges."""
    email, phone = f"crash-{i}@example.com", f"+1415555{2000 + i:04d}"
    expect(f"create {email}", call("POST", "/api/v2/users", {
        "connection": "Username-Password-Authentication", "email": email, "password": PASSWORD}, admin), 201)
    mfa = login(app, email)
    a = expect(f"associate {phone}", call("POST", "/mfa/associate", {
        "authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": phone}, mfa))
    code = None
    for _ in range(200):
        msgs = expect("dev inbox", call("GET", "/api/v2/dev-inbox?" + urllib.parse.urlencode({"to": phone}),
                                        token=admin))
        if msgs:
            code = msgs[0]["text"].split(" ")[0]
            break
        time.sleep(0.05)
    if code is None:
        raise SystemExit(f"[{NAME}] no enrollment message to {phone} in 10 s")
    expect(f"confirm {phone}", call("POST", "/oauth/token", {
        "grant_type": MFA_OOB, "client_id": app["client_id"], "client_secret": app["client_secret"],
        "mfa_token": mfa, "oob_code": a["oob_code"], "binding_code": code}, form=True))
    return login(app, email)


# --- the run -----------------------------------------------------------------------------------------------------------

def main():
    os.makedirs(DATA, exist_ok=True)
    t_start = time.monotonic()
    server = {"p": start_server("0")}
    admin = management_token()
    app = expect("create application", call("POST", "/api/v2/clients", {
        "name": "crash", "app_type": "regular_web", "grant_types": ["password", MFA_OOB]}, admin), 201)
    expect("sms factor", call("PUT", "/api/v2/guardian/factors/sms", {"enabled": True}, admin))
    expect("message types", call("PUT", "/api/v2/guardian/factors/phone/message-types", {"message_types": ["sms"]},
                                 admin))
    expect("policy", call("PUT", "/api/v2/guardian/policies", ["all-applications"], admin))
    # Every challenge comes from this one address: suspicious IP throttling would cap it at 50 messages.
    expect("IP throttling off", call("PATCH", "/api/v2/attack-protection/suspicious-ip-throttling",
                                     {"enabled": False}, admin))
    expect("log stream", call("POST", "/api/v2/log-streams", {
        "name": "crash", "type": "http", "startFrom": "1970-01-01T00:00:00Z",
        "sink": {"httpEndpoint": SINK_URL, "httpContentFormat": "JSONARRAY"}}, admin))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        tokens = list(pool.map(lambda i: enroll(admin, app, i), range(USERS)))
    log(f"{USERS} users enrolled in {time.monotonic() - t_start:.1f} s; streaming {USERS * PER_USER} challenges, "
        f"{CONCURRENCY} at a time, at most {RATE}/s, with {ROUNDS} SIGKILLs and restarts along the way (lease {LEASE_SECS} s)")

    # The stream: every user's challenges interleaved. While the server is down, no new request starts; the ones in
    # flight at the kill get no answer (they may or may not have been committed, so they prove nothing either way).
    tasks = [tokens[u] for _ in range(PER_USER) for u in range(USERS)]
    up = threading.Event()
    up.set()
    lock = threading.Lock()
    answered, other = [], {}
    counts = {"started": 0, "no_answer": 0}
    pace = {"next": time.monotonic()}

    def challenge(mfa):
        up.wait()
        with lock:
            slot = pace["next"] = max(pace["next"], time.monotonic()) + 1 / RATE
        time.sleep(max(0.0, slot - time.monotonic()))
        up.wait()
        with lock:
            counts["started"] += 1
        try:
            status, body = call("POST", "/mfa/challenge", {
                "client_id": app["client_id"], "client_secret": app["client_secret"], "mfa_token": mfa,
                "challenge_type": "oob"})
        except OSError:
            with lock:
                counts["no_answer"] += 1
            return
        with lock:
            if status == 200:
                answered.append(body["oob_code"])
            else:
                key = f"{status} {body.get('error') if isinstance(body, dict) else body}"
                other[key] = other.get(key, 0) + 1

    crashes, killer_error = [], []

    def killer():
        try:
            kill_and_restart()
        except BaseException as e:  # a SystemExit in a thread would vanish: hand it to the main thread
            killer_error.append(e)
            up.set()

    def kill_and_restart():
        for r in range(ROUNDS):
            while counts["started"] < (r + 1) * len(tasks) // (ROUNDS + 1):
                time.sleep(0.005)
            # Kill at a moment when jobs are unfinished (waiting at most 3 s for one).
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and not unfinished():
                time.sleep(0.002)
            up.clear()
            server["p"].kill()
            server["p"].wait()
            left = unfinished()
            crash = {"answered_before": len(answered), "pending": sum(1 for v in left.values() if v == "pending"),
                     "running": sum(1 for v in left.values() if v == "running"), "recovered_secs": None,
                     "stream_lag": stream_lag()}
            crashes.append(crash)
            t_restart = time.monotonic()
            server["p"] = start_server(str(r + 1))
            crash["ready_secs"] = time.monotonic() - t_restart
            up.set()
            # Recovery: every job the dead server left unfinished has ended (the stream goes on meanwhile).
            while time.monotonic() - t_restart < DRAIN_BOUND_SECS:
                if not left.keys() & unfinished().keys():
                    crash["recovered_secs"] = time.monotonic() - t_restart
                    break
                time.sleep(0.05)

    k = threading.Thread(target=killer)
    k.start()
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(challenge, tasks))
    k.join()
    if killer_error:
        raise killer_error[0]
    t_end = time.monotonic()
    drained = None
    while time.monotonic() - t_end < DRAIN_BOUND_SECS:
        if not unfinished():
            drained = time.monotonic() - t_end
            break
        time.sleep(0.05)
    jobs, message_ids = jobs_and_messages()
    # The stream catches up: every event in the log reaches the sink.
    stream_done = None
    while time.monotonic() - t_end < 2 * DRAIN_BOUND_SECS:
        expected = set(all_log_ids())
        with received_lock:
            got = set(received)
        if expected <= got:
            stream_done = time.monotonic() - t_end
            break
        time.sleep(0.1)
    expected = set(all_log_ids())
    with received_lock:
        got_list = list(received)
    stream_lost = expected - set(got_list)
    stream_duplicates = len(got_list) - len(set(got_list))
    server["p"].terminate()
    try:
        server["p"].wait(timeout=20)
    except subprocess.TimeoutExpired:
        server["p"].kill()
        server["p"].wait()

    by_challenge = {c: (s, json.loads(d) if isinstance(d, str) else d) for c, s, d in jobs if c}
    ids = set(message_ids)
    lost = []
    for oob in answered:
        status, details = by_challenge.get(hashlib.sha256(oob.encode()).hexdigest(), (None, None))
        mid = ((details or {}).get("provider_response") or {}).get("message_id")
        if status != "sent" or mid not in ids:
            lost.append((oob[:12] + "...", status, mid))
    delivered = len(answered) - len(lost)
    sent_jobs = sum(1 for _, s, _ in jobs if s == "sent")
    failed_jobs = sum(1 for _, s, _ in jobs if s == "failed")
    duplicates = len(message_ids) - sent_jobs

    for i, c in enumerate(crashes, 1):
        rec = f"{c['recovered_secs']:.1f} s" if c["recovered_secs"] is not None else f"not in {DRAIN_BOUND_SECS} s"
        log(f"kill {i}: after {c['answered_before']} answers; unfinished jobs {c['pending'] + c['running']} "
            f"({c['pending']} pending, {c['running']} running); log stream {c['stream_lag']} events behind; "
            f"restarted server ready in {c['ready_secs']:.1f} s, all of them done {rec} after the restart")
    drain_text = f"{drained:.1f} s" if drained is not None else f"not in {DRAIN_BOUND_SECS} s"
    log(f"challenges sent {counts['started']}, answered 200 {len(answered)}, no answer (in flight at a kill) "
        f"{counts['no_answer']}, other answers {other or 0}")
    log(f"delivered {delivered}, lost {len(lost)}, duplicates {duplicates} (messages {len(message_ids)}, jobs sent "
        f"{sent_jobs}, jobs failed {failed_jobs}); queue drained {drain_text} after the stream; "
        f"{time.monotonic() - t_start:.0f} s in all")
    stream_text = f"{stream_done:.1f} s" if stream_done is not None else "not"
    log(f"log stream: events {len(expected)}, at the sink {len(set(got_list))}, lost {len(stream_lost)}, duplicates "
        f"{stream_duplicates} (requests' events {len(got_list)}); caught up {stream_text} after the stream")
    problems = []
    if stream_lost:
        problems.append(f"{len(stream_lost)} log events never reached the stream's sink: {sorted(stream_lost)[:3]}")
    if not any(c["stream_lag"] for c in crashes):
        problems.append("the log stream was never behind at a kill")
    if lost:
        problems.append(f"{len(lost)} answered challenges were not delivered: {lost[:5]}")
    if drained is None or any(c["recovered_secs"] is None for c in crashes):
        problems.append("the delivery queue did not drain")
    if failed_jobs:
        problems.append(f"{failed_jobs} jobs failed")
    if other:
        problems.append(f"unexpected answers: {other}")
    if len(crashes) != ROUNDS or not answered:
        problems.append("the kills did not land mid-stream")
    if duplicates < 0:
        problems.append("fewer messages than sent jobs")
    for p in problems:
        log(f"FAIL: {p}")
    with open(os.path.join(WORK, "result.json"), "w") as f:
        json.dump({"backend": NAME, "sent": counts["started"], "answered": len(answered), "delivered": delivered,
                   "lost": len(lost), "duplicates": duplicates, "crashes": crashes, "drain_secs": drained,
                   "stream_events": len(expected), "stream_lost": len(stream_lost),
                   "stream_duplicates": stream_duplicates}, f)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
