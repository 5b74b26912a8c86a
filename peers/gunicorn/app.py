# The gunicorn peer of `hijack conform`: the conformance endpoints of
# SPEC.md#conformance-endpoints as a WSGI application on gunicorn's sync worker, handing over
# with the raw socket gunicorn puts in the environ (`environ['gunicorn.socket']`), as
# gunicorn-hosted WebSocket libraries do (simple-websocket, flask-sock).
#
#   peers/start gunicorn [ADDR]   (gunicorn -c peers/gunicorn/gunicorn.conf.py app:app)
#
# The sync worker serves one request per connection (it forces `Connection: close`) and one
# connection at a time per worker process, so the close-notify records live in a directory all
# workers share (made before the fork: the app is preloaded), and /hold, /release and /stats are
# not offered (404): a held connection would need a worker each, and gunicorn shuts a
# connection down once the application returns.
import errno
import json
import os
import select
import shutil
import socket
import tempfile
import time
import atexit
from urllib.parse import parse_qs

import gunicorn

# id -> {id, close_notify, after_ms}, one JSON file per id (shared by the worker processes).
EVENTS = tempfile.mkdtemp(prefix="hijack-peer-gunicorn-")
_MASTER = os.getpid()


@atexit.register
def _cleanup():
    if os.getpid() == _MASTER:
        shutil.rmtree(EVENTS, ignore_errors=True)


def _event_path(id_):
    # One file name per id, whatever bytes the id holds.
    return os.path.join(EVENTS, id_.encode("utf-8", "surrogateescape").hex() + ".json")


def record(id_, state, after_ms):
    tmp = _event_path(id_) + ".%d.tmp" % os.getpid()
    with open(tmp, "w") as f:
        json.dump({"id": id_, "close_notify": state, "after_ms": after_ms}, f)
    os.replace(tmp, _event_path(id_))


def has_token(environ, key, token):
    return any(t.strip().lower() == token for t in environ.get(key, "").split(","))


def wants_upgrade(environ, protocol):
    return has_token(environ, "HTTP_CONNECTION", "upgrade") and has_token(
        environ, "HTTP_UPGRADE", protocol
    )


def text(start_response, status, body, extra=()):
    data = body.encode("utf-8")
    start_response(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))]
        + list(extra),
    )
    return [data]


class Upgraded(StopIteration):
    """Raised once the application has answered on the raw socket itself: gunicorn's sync worker
    then writes nothing more and closes the connection (flask-sock does the same)."""


def echo(environ):
    sock = environ["gunicorn.socket"]
    sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
    # The raw socket: whatever gunicorn's parser had already read past the head stays in its
    # buffer, which the WSGI environ does not expose.
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:  # the client half-closed
                break
            sock.sendall(chunk)
    except OSError:
        pass
    raise Upgraded()


def close_notify(environ, start_response, id_):
    query = parse_qs(environ.get("QUERY_STRING", ""))
    timeout_ms = 5000
    try:
        t = int(query.get("timeout_ms", [""])[0])
        if t >= 0:
            timeout_ms = t
    except ValueError:
        pass
    record(id_, "pending", None)
    started = time.monotonic()
    deadline = started + timeout_ms / 1000
    sock = environ["gunicorn.socket"]
    watching = True
    # WSGI has no close-notify: the application watches the raw socket. Readable with nothing
    # to read is the client's end of stream; a reset is an error. Readable with bytes is a
    # pipelined request: those are the server's to read, so the watch stops there.
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        if not watching:
            time.sleep(left)
            break
        readable, _, _ = select.select([sock], [], [], left)
        if not readable:
            continue
        try:
            peeked = sock.recv(1, socket.MSG_PEEK)
        except OSError:
            peeked = b""
        if peeked:
            watching = False
            continue
        record(id_, "fired", int((time.monotonic() - started) * 1000))
        raise Upgraded()  # nobody to answer
    record(id_, "timeout", int((time.monotonic() - started) * 1000))
    return text(start_response, "200 OK", "still here\n")


def events(start_response, id_):
    try:
        with open(_event_path(id_)) as f:
            body = f.read()
    except FileNotFoundError:
        return text(start_response, "404 Not Found", "no such close-notify request\n")
    data = (body + "\n").encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def app(environ, start_response):
    # PATH_INFO is percent-decoded; the contract's paths are plain.
    path = environ.get("PATH_INFO", "")
    if path == "/echo":
        if wants_upgrade(environ, "echo"):
            return echo(environ)
        return text(start_response, "426 Upgrade Required", "send Connection: Upgrade and Upgrade: echo\n")
    if path == "/close-notify" or path.startswith("/close-notify/"):
        return close_notify(environ, start_response, path[len("/close-notify"):].lstrip("/"))
    if path.startswith("/events/"):
        return events(start_response, path[len("/events/"):])
    # Any other path: read the whole body, then answer (400 when the body cannot be read).
    try:
        body = environ["wsgi.input"]
        while body.read(65536):
            pass
    except Exception:
        return text(start_response, "400 Bad Request", "cannot read the request body\n")
    target = environ.get("RAW_URI", path)
    # The body names the request it answers (SPEC.md#conformance-endpoints).
    return text(
        start_response,
        "200 OK",
        "%s %s: hijack conformance peer (gunicorn %s sync worker)\n"
        % (environ["REQUEST_METHOD"], target, gunicorn.__version__),
    )
