"""Counting proxies for the cluster harness's cost test: what one node says to PostgreSQL and to Redis, counted on the
wire, whatever the server's own settings (no pg_stat_statements or statement log needed). python3 standard library.

PgCounter reads the frontend/backend protocol (https://www.postgresql.org/docs/current/protocol-message-formats.html):
every simple Query ('Q') and every Execute ('E') is one statement, classified by its SQL (the Parse a Bind's statement
came from); every ReadyForQuery ('Z') ends one round trip (one that carried no statement was a
Parse/Describe, preparing one, or a bare Sync, which is how sqlx's pool checks a connection it hands out); a ReadyForQuery that says "idle" after statements, or after
"in a transaction", ends one transaction, and it is a *write* transaction when one of its statements was an INSERT,
UPDATE or DELETE (the ones that flush WAL at commit). An SSLRequest is answered "no" by the proxy itself, so the
stream stays readable (the node must use sslmode=disable or prefer).

RedisCounter reads RESP arrays from the client: one array is one command (an EVALSHA of a script counts once).
"""
import os
import re
import socket
import struct
import threading

SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104


class _Proxy:
    def __init__(self, upstream_host, upstream_port):
        self.upstream = (upstream_host, upstream_port)
        self.lock = threading.Lock()
        self.upstream_ports = set()  # the local ports of our connections to the server (pg_stat_activity.client_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            server = socket.create_connection(self.upstream)
            server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.upstream_ports.add(server.getsockname()[1])
            state = self.new_connection()
            threading.Thread(target=self._pump, args=(client, server, state, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, state, False), daemon=True).start()

    def _pump(self, src, dst, state, from_client):
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                buf += data
                buf, reply, forward = self.parse(state, buf, from_client)
                if reply:
                    src.sendall(reply)
                if forward:
                    dst.sendall(forward)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def snapshot(self):
        with self.lock:
            return dict(self.counts)

    def close(self):
        self.listener.close()


def _kind(sql):
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    if head in ("BEGIN", "START", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"):
        return "tx"
    if head in ("INSERT", "UPDATE", "DELETE") or (head == "WITH" and re.search(r"\b(INSERT|UPDATE|DELETE)\b", sql, re.I)):
        return "write"
    return "read"


class PgCounter(_Proxy):
    def __init__(self, host, port, tag=None):
        """`tag(sql) -> str or None`: statements it names are also counted under that name (say "delivery")."""
        self.tag = tag
        self.counts = {"statements": 0, "writes": 0, "reads": 0, "tx_control": 0, "round_trips": 0,
                       "transactions": 0, "write_transactions": 0, "prepares": 0, "empty_syncs": 0}
        super().__init__(host, port)

    def new_connection(self):
        return {"started": False, "stmts": {}, "portals": {}, "pending": [], "status": b"I"}

    def _count_statement(self, state, sql):
        kind = _kind(sql)
        with self.lock:
            if kind == "tx":
                self.counts["tx_control"] += 1
            else:
                self.counts["statements"] += 1
                self.counts["writes" if kind == "write" else "reads"] += 1
                name = self.tag(sql) if self.tag else None
                if name:
                    self.counts[name] = self.counts.get(name, 0) + 1
        state["pending"].append(kind)

    def parse(self, state, buf, from_client):
        forward = bytearray()
        reply = b""
        while True:
            if from_client and not state["started"]:
                if len(buf) < 8:
                    break
                n, code = struct.unpack("!ii", buf[:8])
                if len(buf) < n:
                    break
                msg, buf = buf[:n], buf[n:]
                if code in (SSL_REQUEST, GSSENC_REQUEST):
                    reply += b"N"  # "no encryption": the startup follows in clear
                    continue
                state["started"] = True
                forward += msg
                continue
            if len(buf) < 5:
                break
            t, n = buf[:1], struct.unpack("!i", buf[1:5])[0]
            if len(buf) < 1 + n:
                break
            msg, body, buf = buf[:1 + n], buf[5:1 + n], buf[1 + n:]
            forward += msg
            if from_client:
                if t == b"Q":
                    self._count_statement(state, body.split(b"\0", 1)[0].decode("utf-8", "replace"))
                elif t == b"P":
                    state["parsed"] = True
                    name, rest = body.split(b"\0", 1)
                    state["stmts"][name] = rest.split(b"\0", 1)[0].decode("utf-8", "replace")
                elif t == b"B":
                    portal, rest = body.split(b"\0", 1)
                    state["portals"][portal] = rest.split(b"\0", 1)[0]
                elif t == b"E":
                    portal = body.split(b"\0", 1)[0]
                    self._count_statement(state, state["stmts"].get(state["portals"].get(portal, b""), ""))
            elif t == b"Z":
                status = body[:1]
                kinds, state["pending"] = state["pending"], []
                parsed, state["parsed"] = state.get("parsed", False), False
                with self.lock:
                    self.counts["round_trips"] += 1
                    if not kinds:
                        # A round trip without a statement: a Parse/Describe (preparing one), or a bare Sync (the
                        # pool's liveness check when a connection is taken).
                        self.counts["prepares" if parsed else "empty_syncs"] += 1
                    state.setdefault("tx_kinds", []).extend(kinds)
                    if status == b"I" and (state["status"] == b"T" or kinds):
                        self.counts["transactions"] += 1
                        if "write" in state["tx_kinds"]:
                            self.counts["write_transactions"] += 1
                    if status != b"T":
                        state["tx_kinds"] = []
                state["status"] = status
        return buf, reply, bytes(forward)


class RedisCounter(_Proxy):
    def __init__(self, host, port):
        self.counts = {"commands": 0}
        super().__init__(host, port)

    def new_connection(self):
        return {}

    def parse(self, state, buf, from_client):
        if not from_client:
            return b"", b"", buf
        forward = bytearray()
        while buf:
            end = _resp_command_end(buf)
            if end is None:
                break
            name = _resp_first_word(buf[:end])
            forward += buf[:end]
            buf = buf[end:]
            with self.lock:
                self.counts["commands"] += 1
                self.counts[name] = self.counts.get(name, 0) + 1
        return buf, b"", bytes(forward)


def _resp_command_end(buf):
    """Where the first complete RESP array (a client command) in buf ends, or None while it is incomplete."""
    if buf[:1] != b"*":
        nl = buf.find(b"\r\n")  # an inline command
        return None if nl < 0 else nl + 2
    nl = buf.find(b"\r\n")
    if nl < 0:
        return None
    count, i = int(buf[1:nl]), nl + 2
    for _ in range(count):
        nl = buf.find(b"\r\n", i)
        if nl < 0:
            return None
        size = int(buf[i + 1:nl])
        i = nl + 2 + size + 2
        if i > len(buf):
            return None
    return i


def _resp_first_word(cmd):
    if cmd[:1] != b"*":
        return cmd.split(None, 1)[0].decode("ascii", "replace").upper() if cmd.strip() else ""
    parts = cmd.split(b"\r\n")
    return parts[2].decode("ascii", "replace").upper() if len(parts) > 2 else ""


def process_cpu_secs(pid):
    """utime + stime of a process, in seconds (/proc/PID/stat), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
