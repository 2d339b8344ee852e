#!/usr/bin/env python3
"""scripts/bench.sh's table: the median over the rounds of each figure (min-max beside it when there are several
rounds), and the ratios of issue 18's table. Usage: table.py RESULTS ROUNDS SECS USERS PER_USER OIDC_VERSION COMMIT.
A line of RESULTS is `NAME ROUND VALUE [P50_MS P99_MS OK NOT_OK]`."""
import os
import statistics
import sys

path, rounds, secs, users, per_user, oidc_version, commit = sys.argv[1:]
rows = {}
for line in open(path):
    f = line.split()
    if len(f) >= 3 and f[2] not in ("", "?"):
        rows.setdefault(f[0], []).append([float(x) for x in f[2:]])


def med(name, col=0):
    vals = [r[col] for r in rows.get(name, []) if len(r) > col]
    return statistics.median(vals) if vals else None


def spread(name):
    vals = [r[0] for r in rows.get(name, [])]
    return f" ({min(vals):,.0f}-{max(vals):,.0f})" if len(vals) > 1 else ""


def rate(name, lat=True):
    v = med(name)
    if v is None:
        return "-"
    s = f"{v:,.0f}{spread(name)}"
    if lat and med(name, 1) is not None:
        s += f" p50 {med(name, 1):.1f} ms, p99 {med(name, 2):.1f} ms"
    bad = sum(r[4] for r in rows.get(name, []) if len(r) > 4)
    return s + (f", {bad:.0f} not 2xx" if bad else "")


def ratio(a, b, fmt="{:.2f}x"):
    return fmt.format(a / b) if a is not None and b else "-"


def pct(a, b):
    if a is None or not b:
        return "-"
    v = 100 * a / b
    return f"{v:.1f} %" if v < 10 else f"{v:.0f} %"


def mb(name):
    v = med(name)
    return f"{v / 1024:.0f} MB" if v else "-"


stores = [s for s in ("sqlite", "postgres") if f"cc16_{s}" in rows]
signs, healthz = med("openssl_sign"), med("healthz")
commit_ceiling = {"sqlite": med("sqlite_commit"), "postgres": med("pg_commit")}
label = {"sqlite": "Callsign, SQLite", "postgres": "Callsign, PostgreSQL"}
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
load = open("/proc/loadavg").read().split()[:3]
out = []
out.append(f"Callsign benchmark (scripts/bench.sh): commit {commit}, {os.cpu_count()} CPUs ({model}), load average "
           f"{' '.join(load)} at the end (1, 5, 15 min), medians of {rounds} "
           f"interleaved round(s), {secs} s per measurement (MFA pools: {users} users, {per_user} challenges and 1 "
           f"verification per user per round; a pool measurement is timed from its first request to the answer to its last), wrk "
           f"-t2, oidc-provider {oidc_version} (Node {os.popen('node --version').read().strip()})")
out.append("")
out.append("| figure | " + " | ".join(label[s] for s in stores) + " | reference in the same run |")
out.append("|---|" + "---|" * len(stores) + "---|")
out.append("| RS256 signs/s, `openssl speed -multi 2 rsa2048` | " + " | ".join("" for _ in stores)
           + f" | {rate('openssl_sign', False)} |")
out.append("| `GET /healthz` req/s, c=16 | " + " | ".join("" for _ in stores)
           + f" | {rate('healthz')} (Callsign, SQLite) |")
out.append("| single-row commits/s | " + " | ".join("" for _ in stores)
           + f" | SQLite (WAL, synchronous=NORMAL, one writer): {rate('sqlite_commit', False)}"
           + (f"; pgbench c=16: {rate('pg_commit', False)}" if "pg_commit" in rows else "") + " |")
for c in ("16", "64"):
    ref = med(f"cc{c}_oidc")
    cells = [f"{rate(f'cc{c}_{s}')}; **{ratio(med(f'cc{c}_{s}'), ref)}** oidc-provider; "
             f"{pct(med(f'cc{c}_{s}'), signs)} of the signing ceiling" for s in stores]
    out.append(f"| `client_credentials` grants/s, c={c} | " + " | ".join(cells)
               + f" | oidc-provider: {rate(f'cc{c}_oidc')}; {pct(ref, signs)} of the signing ceiling |")
cells = [f"{rate(f'challenge_{s}')}; {pct(med(f'challenge_{s}'), healthz)} of healthz, "
         f"{pct(med(f'challenge_{s}'), commit_ceiling[s])} of the commit ceiling" for s in stores]
out.append("| `/mfa/challenge`/s, c=16 | " + " | ".join(cells) + " | |")
cells = [(f"{med(f'backlog_{s}'):,.0f} jobs queued when the last challenge was answered; the queue empty "
          f"{med(f'backlog_{s}', 1):.1f} s later" if med(f'backlog_{s}') is not None else "-") for s in stores]
out.append("| delivery to the development provider after the challenges (median) | " + " | ".join(cells) + " | |")
cells = [f"{rate(f'verify_{s}')}; 2 signatures each: "
         f"{pct(2 * med(f'verify_{s}') if med(f'verify_{s}') else None, signs)} of the signing ceiling" for s in stores]
out.append("| `mfa-oob` verify/s, c=16 | " + " | ".join(cells) + " | |")
out.append("| RSS: idle / after preparing the users / peak during the rounds / at the end | "
           + " | ".join(f"{mb(f'rss_idle_{s}')} / {mb(f'rss_setup_{s}')} / {mb(f'rss_max_{s}')} / {mb(f'rss_end_{s}')}"
                        for s in stores)
           + f" | oidc-provider: {mb('rss_idle_oidc')} idle, peak {mb('rss_max_oidc')} |")
out.append(f"| password grants/s, c=64 (argon2id; 403 mfa_required counted as not 2xx) and peak RSS | "
           + " | ".join((f"{(med('pwflood_sqlite', 3) + med('pwflood_sqlite', 4)) / float(secs):,.0f} answers/s, "
                         f"peak {mb('rss_pwflood_sqlite')}" if s == "sqlite" and med("pwflood_sqlite", 3) is not None
                         else "-") for s in stores) + " | |")
scale = sorted((int(k.rsplit("_", 1)[1]), k) for k in rows if k.startswith("scale_challenge_"))
if scale:
    out.append("")
    out.append("| database size (users with a phone, log events) | `/mfa/challenge`/s on SQLite, c=16 |")
    out.append("|---|---|")
    base_rate = med("challenge_sqlite")
    out.append(f"| {users} users (the rounds above) | {rate('challenge_sqlite')} |")
    for n, k in scale:
        out.append(f"| {n:,} | {rate(k)}; {ratio(med(k), base_rate)} of the rounds' |")
if "postgres" in stores:
    out.append("")
    out.append(f"PostgreSQL / SQLite: challenge {ratio(med('challenge_postgres'), med('challenge_sqlite'))}, "
               f"verify {ratio(med('verify_postgres'), med('verify_sqlite'))}, "
               f"client_credentials c=16 {ratio(med('cc16_postgres'), med('cc16_sqlite'))}")
print("\n".join(out))
