# The Tornado peer of `hijack conform`: the conformance endpoints of
# SPEC.md#conformance-endpoints on Tornado's HTTP server and web framework, handing over with
# `RequestHandler.detach()`, as Tornado's own WebSocket handler does (set_status(101),
# finish(), then the IOStream).
#
#   python3 peers/tornado/server.py [ADDR]   (default 127.0.0.1:0; a bare port means
#                                             127.0.0.1:PORT)
#
# Prints "listening on http://127.0.0.1:PORT" on stdout once it accepts connections.
import asyncio
import gc
import json
import sys
import time
import tracemalloc

import tornado
import tornado.httpserver
import tornado.netutil
import tornado.web
from tornado.iostream import StreamClosedError

# /stats: live heap bytes are what tracemalloc traces (every allocation of Python's allocators),
# measured after a full collection; tracing starts before anything else is made.
tracemalloc.start()

# id -> {id, close_notify, after_ms}: what /close-notify/{id} recorded.
EVENTS = {}
# Every part a /hold upgrade handed over: the IOStream (its read buffer holds what Tornado had
# already read).
HELD = []


def has_token(value, token):
    return any(t.strip().lower() == token for t in (value or "").split(","))


class Peer(tornado.web.RequestHandler):
    # Tornado calls the method of the request's name; every one the framework supports is
    # served alike (another method gets Tornado's own 405).
    async def get(self, *args):
        await self.serve()

    post = put = delete = patch = options = head = get

    def wants_upgrade(self, protocol):
        h = self.request.headers
        return has_token(h.get("Connection"), "upgrade") and has_token(h.get("Upgrade"), protocol)

    def text(self, status, body):
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(body)

    def switch(self, protocol):
        # What tornado.websocket does: the 101 through the handler, then the stream.
        self.clear_header("Content-Type")
        self.set_status(101)
        self.set_header("Upgrade", protocol)
        self.set_header("Connection", "Upgrade")
        self.finish()
        return self.detach()

    async def serve(self):
        path = self.request.path
        if path == "/echo":
            if not self.wants_upgrade("echo"):
                return self.text(426, "send Connection: Upgrade and Upgrade: echo\n")
            return await self.echo(self.switch("echo"))
        if path == "/hold":
            if self.request.method != "GET" or not self.wants_upgrade("hold"):
                return self.text(426, "send GET with Connection: Upgrade and Upgrade: hold\n")
            HELD.append(self.switch("hold"))
            return
        if path == "/close-notify" or path.startswith("/close-notify/"):
            return await self.close_notify(path[len("/close-notify"):].lstrip("/"))
        if path.startswith("/events/"):
            ev = EVENTS.get(path[len("/events/"):])
            if ev is None:
                return self.text(404, "no such close-notify request\n")
            self.set_header("Content-Type", "application/json")
            return self.finish(json.dumps(ev) + "\n")
        if path == "/release":
            taken = HELD[:]
            HELD.clear()
            for stream in taken:
                stream.close()
            self.set_header("Content-Type", "application/json")
            return self.finish(json.dumps({"released": len(taken)}) + "\n")
        if path == "/stats":
            gc.collect()
            gc.collect()
            self.set_header("Content-Type", "application/json")
            return self.finish(
                json.dumps({"live_heap_bytes": tracemalloc.get_traced_memory()[0], "connections": None})
                + "\n"
            )
        # Any other path: Tornado has read the whole body before calling the handler.
        # The body names the request it answers (SPEC.md#conformance-endpoints).
        self.text(
            200,
            "%s %s: hijack conformance peer (Tornado %s)\n"
            % (self.request.method, self.request.uri, tornado.version),
        )

    async def echo(self, stream):
        # The stream's read buffer (what Tornado read past the request) comes first.
        try:
            while True:
                chunk = await stream.read_bytes(65536, partial=True)
                await stream.write(chunk)
        except StreamClosedError:
            pass
        stream.close()

    async def close_notify(self, id_):
        timeout_ms = 5000
        try:
            t = int(self.get_query_argument("timeout_ms", ""))
            if t >= 0:
                timeout_ms = t
        except ValueError:
            pass
        EVENTS[id_] = {"id": id_, "close_notify": "pending", "after_ms": None}
        started = time.monotonic()
        self._gone = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._gone), timeout_ms / 1000)
        except asyncio.TimeoutError:
            EVENTS[id_] = {"id": id_, "close_notify": "timeout", "after_ms": int((time.monotonic() - started) * 1000)}
            return self.text(200, "still here\n")
        EVENTS[id_] = {"id": id_, "close_notify": "fired", "after_ms": int((time.monotonic() - started) * 1000)}

    def on_connection_close(self):
        # Tornado's close-notify: the connection closed while the request was being handled.
        gone = getattr(self, "_gone", None)
        if gone is not None and not gone.done():
            gone.set_result(None)


async def main():
    addr = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:0"
    if ":" not in addr:
        addr = "127.0.0.1:" + addr
    host, port = addr.rsplit(":", 1)
    app = tornado.web.Application([(r".*", Peer)])
    server = tornado.httpserver.HTTPServer(app)
    sockets = tornado.netutil.bind_sockets(int(port), host)
    server.add_sockets(sockets)
    print("listening on http://%s:%d" % sockets[0].getsockname()[:2], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
