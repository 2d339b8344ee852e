#!/usr/bin/env python3
"""Scale filler for scripts/bench.sh (never timed): grow a prepared SQLite database to USERS users (each with a
confirmed phone enrollment and a recovery code, like the prepared ones) and LOGS log events, by copying the shape of
the rows the API wrote, straight into the tables (an argon2 hash per user through the API would take hours at a
million). The prepared bench users are left as they are; the filler users are others, so the measured requests run
against indexes of that size.

Usage: scale.py sqlite:PATH USERS LOGS     (totals to reach; rows already there count)
"""
import sqlite3
import sys
import time

CHUNK = 20_000


def main():
    db, users, logs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if not db.startswith("sqlite:"):
        sys.exit("scale.py: SQLite only (a sqlite:PATH database)")
    c = sqlite3.connect(db[len("sqlite:"):], isolation_level=None)
    c.execute("PRAGMA journal_mode = WAL")
    c.execute("PRAGMA synchronous = NORMAL")
    t0 = time.monotonic()
    have = c.execute("SELECT COUNT(*) FROM users").fetchone()[0]
    u = c.execute("SELECT password_hash, created_at, data FROM users LIMIT 1").fetchone()
    phone = c.execute("SELECT kind, status, preferred_channel, name, secret_hash, created_at FROM enrollments "
                      "WHERE kind = 'phone' LIMIT 1").fetchone()
    rc = c.execute("SELECT kind, status, secret_hash, created_at FROM enrollments WHERE kind <> 'phone' LIMIT 1").fetchone()
    if u is None or phone is None:
        sys.exit("scale.py: prepare the database first (prep.py setup)")
    n = have
    while n < users:
        rows = range(n, min(users, n + CHUNK))
        c.execute("BEGIN")
        c.executemany("INSERT INTO users (user_id, email, password_hash, created_at, updated_at, logins_count, data) "
                      "VALUES (?, ?, ?, ?, ?, 0, ?)",
                      ((f"auth0|fill{i:08d}", f"fill-{i}@scale.example", u[0], u[1], u[1], u[2]) for i in rows))
        c.executemany("INSERT INTO enrollments (id, user_id, kind, status, phone_number, preferred_channel, name, "
                      "secret_hash, created_at, enrolled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      ((f"sms|fill{i:08d}", f"auth0|fill{i:08d}", phone[0], phone[1], f"+1415{3000000 + i % 6000000:07d}",
                        phone[2], phone[3], phone[4], phone[5], phone[5]) for i in rows))
        if rc is not None:
            c.executemany("INSERT INTO enrollments (id, user_id, kind, status, secret_hash, created_at, enrolled_at) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?)",
                          ((f"rc|fill{i:08d}", f"auth0|fill{i:08d}", rc[0], rc[1], rc[2], rc[3], rc[3]) for i in rows))
        c.execute("COMMIT")
        n = rows[-1] + 1
    have_logs = c.execute("SELECT COUNT(*) FROM logs").fetchone()[0]
    last = c.execute("SELECT COALESCE(MAX(seq), 0) FROM logs WHERE tx = 0").fetchone()[0]
    body = '{"description":"Success Login","ip":"203.0.113.9","user_agent":"scale.py","details":null}'
    n = have_logs
    while n < logs:
        rows = range(n, min(logs, n + CHUNK))
        c.execute("BEGIN")
        # seq given here, so the trigger (which numbers rows inserted without one) is skipped.
        c.executemany("INSERT INTO logs (log_id, date, event_type, user_id, client_id, data, tx, seq) "
                      "VALUES (?, ?, 's', ?, NULL, ?, 0, ?)",
                      ((f"90020000000000000000{i:036d}", 1_600_000_000_000 + i, f"auth0|fill{i % max(users, 1):08d}",
                        body, last + 1 + (i - have_logs)) for i in rows))
        c.execute("COMMIT")
        n = rows[-1] + 1
    print(f"scale: {c.execute('SELECT COUNT(*) FROM users').fetchone()[0]} users, "
          f"{c.execute('SELECT COUNT(*) FROM enrollments').fetchone()[0]} enrollments, "
          f"{c.execute('SELECT COUNT(*) FROM logs').fetchone()[0]} log events in {time.monotonic() - t0:.1f} s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
