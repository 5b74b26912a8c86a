#!/usr/bin/env python3
"""Replays exported hijack conformance vectors (SPEC.md#conformance-vectors) against a server.

    hijack conform --export DIR
    python3 replay.py DIR http://127.0.0.1:8080 [TIMEOUT_SECONDS]

Python 3 standard library only, and independent of the harness: it reads the schema as
SPEC.md documents it. Prints one line per vector that is not a PASS, then
"N passed, M failed" (NON-STRICT and INCONCLUSIVE counted apart); exits 1 if any failed.
Like the harness, it decides a close by an end of stream or a reset and a kept connection
by an answered follow-up request, never by a timer.
"""
import concurrent.futures
import json
import pathlib
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid

SETTLE = 0.1  # seconds of silence before the follow-up is sent (at most ten times this)


# The CONNECT profile's target (SPEC.md#connect-profile): "127.0.0.1:PORT" of an echo
# listener, and of a port on which nothing listens; set by start_connect_targets.
CONNECT_ECHO, CONNECT_REFUSED = "", ""


def data_of(step, run):
    data = step["data"].replace("${RUN}", run)
    data = data.replace("${CONNECT_ECHO}", CONNECT_ECHO).replace("${CONNECT_REFUSED}", CONNECT_REFUSED)
    return data.encode("latin-1") * step.get("repeat", 1)


def start_connect_targets():
    """An echo listener on 127.0.0.1: each connection echoed to its end, then a mark that the
    end was seen, then a half-close (SPEC.md#connect-profile)."""
    global CONNECT_ECHO, CONNECT_REFUSED
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    gone = socket.socket()
    gone.bind(("127.0.0.1", 0))
    CONNECT_ECHO = "127.0.0.1:%d" % listener.getsockname()[1]
    CONNECT_REFUSED = "127.0.0.1:%d" % gone.getsockname()[1]
    gone.close()

    def echo(conn):
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    break
                conn.sendall(data)
            conn.sendall(b"#the target saw the half-close#")
            conn.shutdown(socket.SHUT_WR)

    def serve():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()


def parse_response(buf, ended):
    """(status, headers, used) for one complete response at the front of buf, or None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError("not a status line: %r" % lines[0])
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    body = end + 4
    if 100 <= status < 200 or status in (204, 304):
        return status, headers, body
    te = ",".join(headers.get("transfer-encoding", [])).lower()
    if "chunked" in [t.strip() for t in te.split(",")]:
        pos = body
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(buf[pos:eol].split(b";")[0].strip(), 16)
            pos = eol + 2
            if size == 0:
                while True:  # trailer fields, then an empty line
                    eol = buf.find(b"\r\n", pos)
                    if eol < 0:
                        return None
                    if eol == pos:
                        return status, headers, eol + 2
                    pos = eol + 2
            if len(buf) < pos + size + 2:
                return None
            pos += size + 2
    if "content-length" in headers:
        n = int(headers["content-length"][0])
        return (status, headers, body + n) if len(buf) >= body + n else None
    return (status, headers, len(buf)) if ended else None


class Conn:
    def __init__(self, addr, timeout):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.ended = None

    def send(self, data, size, pause):
        for i in range(0, len(data), size):
            try:
                self.sock.sendall(data[i:i + size])
            except OSError:
                return  # the server may close early; what it sent is still readable
            if pause and i + size < len(data):
                time.sleep(pause)

    def fill(self, deadline):
        """Reads once; returns None on bytes, else 'eof', 'reset' or 'timeout'."""
        if self.ended:
            return self.ended
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout"
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return "timeout"
        except OSError:
            self.ended = "reset"
            return self.ended
        if not data:
            self.ended = "eof"
            return self.ended
        self.buf += data
        return None


def event(addr, ident, timeout):
    c = Conn(addr, timeout)
    c.send(("GET /events/%s HTTP/1.1\r\nHost: conform\r\nConnection: close\r\n\r\n" % ident).encode(), 1 << 20, 0)
    deadline = time.monotonic() + timeout
    while True:
        r = parse_response(c.buf, c.ended)
        if r:
            status, _, used = r
            if status == 404:
                return None
            return json.loads(c.buf[c.buf.find(b"\r\n\r\n") + 4:used])["close_notify"]
        if c.fill(deadline) == "timeout" or (c.ended and not parse_response(c.buf, True)):
            raise RuntimeError("no answer from /events/%s" % ident)


def read_responses(c, got, deadline, enough):
    """Reads responses into got until enough(got), a 101, the close or the deadline."""
    while True:
        while True:
            r = parse_response(c.buf, c.ended)
            if not r:
                break
            status, headers, used = r
            raw, c.buf = c.buf[:used], c.buf[used:]
            if 100 <= status < 200 and status != 101:
                continue
            got.append((status, headers, raw))
            if status == 101:
                return None
        if c.ended:
            return c.ended
        if enough(got):
            return None
        if c.fill(deadline) == "timeout":
            return "timeout"


def expect_responses(c, step, deadline, timeout, token):
    """Returns (statuses_ok, close, count, description): close is "closed", "open" (the
    follow-up was answered) or "undecided"; count leaves the follow-up's answer out."""
    want, close = step.get("responses"), step.get("close", False)
    n = len(want) if want is not None else 1
    got, answered = [], False
    if step.get("follow_up"):
        end = read_responses(c, got, deadline, lambda g: len(g) >= n)
        if end is None and not (got and got[-1][0] == 101):
            # Silence first, then the follow-up request and a half-close (SPEC.md).
            settle_until, idle = time.monotonic() + 10 * SETTLE, time.monotonic() + SETTLE
            while time.monotonic() < min(idle, settle_until):
                if c.fill(min(idle, settle_until)) is None:
                    idle = time.monotonic() + SETTLE
                elif c.ended:
                    break
            end = read_responses(c, got, time.monotonic(), lambda g: True)
            if end is None:
                c.send(("GET /?follow-up=%s HTTP/1.1\r\nHost: conform\r\n\r\n" % token).encode(), 1 << 30, 0)
                c.sock.shutdown(socket.SHUT_WR)
                end = read_responses(c, got, time.monotonic() + timeout, lambda g: False)
                # The follow-up's answer: a last 200 beyond the listed responses.
                if len(got) > n and got[-1][0] == 200:
                    got.pop()
                    answered = True
        elif end == "timeout":
            c.sock.shutdown(socket.SHUT_WR)
            end = read_responses(c, got, time.monotonic() + timeout, lambda g: False)
    else:
        end = read_responses(c, got, deadline,
                             (lambda g: False) if close or want is None else (lambda g: len(g) >= n))
    def allowed(exp, status):
        # "accept": other statuses as good, "413" or a class "4xx".
        return exp["status"] == status or any(
            a == str(status) or (a.endswith("xx") and a[0] == str(status)[0])
            for a in exp.get("accept", []))

    def matches(exp, resp):
        status, headers, raw = resp
        # "names": the request it answers, checked as far as the target's bodies name
        # requests (NAMING, found by probe_naming).
        request = exp.get("names")
        if request and NAMING == "method" and request.encode("latin-1") not in raw:
            return False
        if request and NAMING == "target" and request.split(" ", 1)[-1].encode("latin-1") not in raw:
            return False
        for name, token in exp.get("headers", {}).items():
            items = [i.strip().lower() for v in headers.get(name, []) for i in v.split(",")]
            if token.lower() not in items:
                return False
        # "lacks": tokens that must not be there (connection: close on a 101).
        for name, token in exp.get("lacks", {}).items():
            items = [i.strip().lower() for v in headers.get(name, []) for i in v.split(",")]
            if token.lower() in items:
                return False
        return allowed(exp, status)

    ok = want is None or (len(want) <= len(got) and all(matches(e, r) for e, r in zip(want, got)))
    if want is not None and len(got) < len(want) and end == "timeout":
        ok = None  # nothing decisive
    state = "open" if answered else "closed" if end in ("eof", "reset") else "undecided"
    return ok, state, len(got), "responses %s%s, then %s" % (
        [r[0] for r in got], " (the follow-up answered)" if answered else "", end or "open")


def ws_messages(c, want, deadline):
    """Reads RFC 6455 frames until every message of want came: None, else (decided, what)."""
    got, partial = 0, None
    while got < len(want):
        b = c.buf
        frame = None
        if len(b) >= 2:
            n, at = b[1] & 0x7F, 2
            if n == 126 and len(b) >= 4:
                n, at = struct.unpack(">H", b[2:4])[0], 4
            elif n == 127 and len(b) >= 10:
                n, at = struct.unpack(">Q", b[2:10])[0], 10
            if n < 126 or at > 2:
                if b[1] & 0x80:
                    return True, "a masked frame (RFC 6455 §5.1: a server must not mask)"
                if len(b) >= at + n:
                    frame = (b[0], b[at:at + n])
                    c.buf = b[at + n:]
        if frame is None:
            end = c.fill(deadline)
            if end == "timeout":
                return False, "message %d of %d: nothing more within the step's time" % (got + 1, len(want))
            if end:
                return True, "message %d of %d: %s after %d bytes of a frame" % (got + 1, len(want), end, len(c.buf))
            continue
        head, payload = frame
        fin, rsv, op = head & 0x80, head & 0x70, head & 0x0F
        if rsv:
            return True, "a frame with a reserved bit set"
        if op == 0:
            if partial is None:
                return True, "a continuation frame with no message to continue"
            partial = (partial[0], partial[1] + payload)
        elif op in (1, 2):
            if partial is not None:
                return True, "a new data frame inside a fragmented message"
            partial = ("text" if op == 1 else "binary", payload)
        elif op in (8, 9, 10):
            if not fin or len(payload) > 125:
                return True, "a fragmented or over-long control frame"
            kind = {8: "close", 9: "ping", 10: "pong"}[op]
            if kind == "ping" or (kind == "pong" and want[got]["kind"] != "pong"):
                continue  # a server may ping; an unsolicited Pong needs no answer
            if not (kind == want[got]["kind"] and (kind == "close" or payload == data_of(want[got], ""))):
                return True, "message %d: expected %s, got %s %r" % (got + 1, want[got]["kind"], kind, payload[:40])
            got += 1
            continue
        else:
            return True, "reserved opcode %d" % op
        if not fin:
            continue
        kind, data = partial
        partial = None
        w = want[got]
        if kind != w["kind"] or data != data_of(w, ""):
            return True, "message %d: expected %s of %d bytes, got %s of %d bytes %r" % (
                got + 1, w["kind"], len(data_of(w, "")), kind, len(data), data[:40])
        got += 1
    return None


def replay(vector, addr, timeout, run):
    """Returns (verdict, detail)."""
    conns, level = {}, vector["level"]
    for i, step in enumerate(vector["steps"]):
        op, deadline = step["op"], time.monotonic() + timeout
        c = conns.get(step.get("conn"))
        miss = None  # (level, what)
        if op == "connect":
            conns[step["conn"]] = Conn(addr, timeout)
        elif op == "send":
            c.send(data_of(step, run), step.get("write_size") or 1 << 30, step.get("pause_ms", 0) / 1000)
        elif op == "sleep":
            time.sleep(step["ms"] / 1000)
        elif op == "shutdown_write":
            c.sock.shutdown(socket.SHUT_WR)
        elif op == "reset":
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.sock.close()
        elif op == "close":
            c.sock.close()
        elif op == "expect_responses":
            token = "%s-%s-%d" % (run, vector["name"].replace("/", "-"), step["conn"])
            try:
                ok, state, count, seen = expect_responses(c, step, deadline, timeout, token)
            except ValueError as e:
                ok, state, count, seen = False, "closed", 0, str(e)
            limit = step.get("max_responses")
            if step.get("follow_up") and step.get("responses") is not None:
                limit = max(limit or 0, len(step["responses"]))
            close_level = step.get("close_level", "SHOULD" if step.get("follow_up") else level)
            # Every check of the step counts, the worst one decides (as in the harness: a
            # status the RFC leaves open does not hide a close it requires).
            misses = []
            if limit is not None and count > limit:
                misses.append(("MUST", "smuggling: more than %d response(s): %s" % (limit, seen)))
            if ok is False:
                misses.append((level, "expected %s; got %s" % (step.get("responses"), seen)))
            if step.get("close") and state == "open":
                misses.append((close_level, "kept open: expected the close after %s; got %s" % (step.get("responses"), seen)))
            must = [m for m in misses if m[0] == "MUST"]
            if must or misses:
                miss = (must or misses)[0]
            elif ok is None or (step.get("close") and state == "undecided"):
                return "INCONCLUSIVE", "step %d: nothing decisive: %s" % (i, seen)
        elif op == "expect_bytes":
            want = data_of(step, run)
            while len(c.buf) < len(want) and c.fill(deadline) is None:
                pass
            got, c.buf = c.buf[:len(want)], c.buf[len(want):]
            if got != want and want.startswith(got) and not c.ended:
                return "INCONCLUSIVE", "step %d: %d of %d bytes, then nothing" % (i, len(got), len(want))
            if got != want:
                miss = (level, "expected %d bytes %r...; got %d bytes %r..." % (len(want), want[:40], len(got), got[:40]))
        elif op == "expect_close":
            before = len(c.buf)
            while c.fill(deadline) is None:
                pass
            if len(c.buf) == before and c.ended is None:
                return "INCONCLUSIVE", "step %d: no close within the step's time" % i
            if c.ended is None or len(c.buf) > before:
                miss = (level, "expected close; got %r then %s" % (c.buf[before:][:80], c.ended or "timeout"))
        elif op == "expect_ws_messages":
            r = ws_messages(c, step["messages"], deadline)
            if r and not r[0]:
                return "INCONCLUSIVE", "step %d: %s" % (i, r[1])
            if r:
                miss = (level, r[1])
        elif op == "expect_tunnel":
            while True:
                while b"\r\n\r\n" not in c.buf:
                    end = c.fill(deadline)
                    if end == "timeout":
                        return "INCONCLUSIVE", "step %d: no response head within the step's time" % i
                    if end:
                        return "FAIL", "step %d: %s before a response head: %r" % (i, end, c.buf[:80])
                head, c.buf = c.buf.split(b"\r\n\r\n", 1)
                status = head.split(b" ", 2)[1:2]
                if status and status[0].startswith(b"1"):
                    continue
                break
            lines = head.lower().split(b"\r\n")[1:]
            framed = any(l.startswith((b"content-length:", b"transfer-encoding:")) for l in lines)
            if not (status and status[0].startswith(b"2")) or framed:
                miss = (level, "expected a 2xx head without framing fields; got %r" % head[:120])
        elif op == "expect_event":
            ident = step["id"].replace("${RUN}", run)
            until, state, polls = time.monotonic() + step["within_ms"] / 1000, None, 0
            while True:
                polls += 1
                state = event(addr, ident, timeout)
                if state not in (None, "pending") or time.monotonic() >= until:
                    break
                time.sleep(min(0.02 * polls, 0.2))
            if state == "pending":
                return "INCONCLUSIVE", "step %d: /events/%s still pending" % (i, ident)
            if state != step["close_notify"]:
                miss = (level, "/events/%s: expected %s, got %s" % (ident, step["close_notify"], state))
        else:
            return "FAIL", "unknown op %r" % op
        if miss:
            return ("FAIL" if miss[0] == "MUST" else "NON-STRICT"), "step %d: %s" % (i, miss[1])
    for c in conns.values():
        c.sock.close()
    return "PASS", ""


# How the target's bodies name the request they answer: "method" (`GET /x`), "target" (`/x`)
# or None; probe_naming sets it once, before the vectors run.
NAMING = None


def probe_naming(addr, timeout):
    c = Conn(addr, timeout)
    c.send(b"GET /?names-probe=1 HTTP/1.1\r\nHost: conform\r\nConnection: close\r\n\r\n", 1 << 20, 0)
    got = []
    read_responses(c, got, time.monotonic() + timeout, lambda g: len(g) >= 1)
    raw = got[0][2] if got else b""
    return "method" if b"GET /?names-probe=1" in raw else "target" if b"/?names-probe=1" in raw else None


def main():
    global NAMING
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: replay.py DIR http://HOST:PORT [TIMEOUT_SECONDS]")
    timeout = float(sys.argv[3]) if len(sys.argv) == 4 else 5.0  # per step
    url = urllib.parse.urlsplit(sys.argv[2])
    addr = (url.hostname, url.port or 80)
    run = uuid.uuid4().hex[:12]
    vectors = [json.loads(p.read_text()) for p in sorted(pathlib.Path(sys.argv[1]).rglob("*.json"))]
    if any("${CONNECT" in json.dumps(v) for v in vectors):
        start_connect_targets()
    if not vectors:
        sys.exit("no vectors in %s" % sys.argv[1])
    try:
        NAMING = probe_naming(addr, timeout)
    except OSError as e:
        sys.exit("cannot reach %s: %s" % (sys.argv[2], e))

    def one(v):
        try:
            return v["name"], replay(v, addr, timeout, run)
        except Exception as e:  # a vector that cannot run is a failure, not a crash
            return v["name"], ("FAIL", "%s: %s" % (type(e).__name__, e))

    counts = {"PASS": 0, "FAIL": 0, "NON-STRICT": 0, "INCONCLUSIVE": 0}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for name, (verdict, detail) in pool.map(one, vectors):
            counts[verdict] += 1
            if verdict != "PASS":
                print("%s %s: %s" % (verdict, name, detail))
    print("%d passed, %d failed" % (counts["PASS"], counts["FAIL"])
          + (" (%d non-strict)" % counts["NON-STRICT"] if counts["NON-STRICT"] else "")
          + (" (%d inconclusive)" % counts["INCONCLUSIVE"] if counts["INCONCLUSIVE"] else ""))
    sys.exit(1 if counts["FAIL"] else 0)


if __name__ == "__main__":
    main()
