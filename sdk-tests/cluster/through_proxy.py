#!/usr/bin/env python3
"""Requests through docs/deploy/nginx.conf (run by run.sh, nginx in front of the three nodes): they are answered,
spread over all three nodes (each node's own request counter, from its metrics_addr, goes up), and a client that
writes its own X-Forwarded-For is still logged under the address nginx saw, not the one it chose.

Usage: through_proxy.py BASE CERT BOOTSTRAP_JSON METRICS_PORT... (python3 standard library only)
"""
import json
import ssl
import sys
import urllib.request

BASE, CERT, BOOTSTRAP, *METRICS = sys.argv[1:]
CTX = ssl.create_default_context(cafile=CERT)
CTX.check_hostname = False  # the example's certificate names login.example.com; this run calls 127.0.0.1
SPOOFED = "203.0.113.99"


def call(method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    h = {"content-type": "application/json", **(headers or {})}
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, context=CTX, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def requests_served(port):
    """The sum of a node's callsign_http_requests_total."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("callsign_http_requests_total{"))


def check(ok, what):
    if not ok:
        print(f"FAIL {what}")
        sys.exit(1)


before = [requests_served(p) for p in METRICS]
statuses = [call("GET", "/readyz")[0] for _ in range(30)]
check(statuses == [200] * 30, f"30 GET /readyz through nginx: {statuses}")
after = [requests_served(p) for p in METRICS]
spread = [int(a - b) for a, b in zip(after, before)]
check(all(n >= 1 for n in spread), f"every node served some of the 30 requests: {spread}")
print(f"PASS 30 requests through nginx, served by nodes 1-3: {spread}")

creds = json.load(open(BOOTSTRAP))
s, tok = call("POST", "/oauth/token", {"grant_type": "client_credentials", "client_id": creds["client_id"],
                                       "client_secret": creds["client_secret"], "audience": creds["audience"]},
              {"x-forwarded-for": SPOOFED})
check(s == 200, f"client_credentials through nginx: {s} {tok}")
auth = {"authorization": f"Bearer {tok['access_token']}"}
s, logs = call("GET", "/api/v2/logs?q=type:seccft&per_page=10", headers=auth)
check(s == 200 and logs, f"the grant's log event: {s} {logs}")
ips = {e.get("ip") for e in logs}
check(SPOOFED not in ips, f"a client's own X-Forwarded-For is not believed through nginx: {ips}")
check(logs[0].get("ip") == "127.0.0.1", f"the event carries the address nginx saw: {logs[0].get('ip')}")
print(f"PASS a client writing X-Forwarded-For: {SPOOFED} is logged as {logs[0]['ip']}, the address nginx saw")
