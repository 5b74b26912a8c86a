#!/usr/bin/env python3
"""A stand-in backend for the proxy peers' reproductions (peers/FINDINGS.md): prints exactly what
the proxy forwarded, so that a request sent with send.py can be followed through the proxy.
Listens on 127.0.0.1:PORT (0: a free port; it prints "backend on 127.0.0.1:PORT"); for each
connection, reads until 300 ms of silence, prints the bytes (Python escapes, one line per
connection), answers RESPONSE (Python escapes; default a 400 with Connection: close, as the
reference server answers a bad request) and closes. Run it as the backend of a proxy peer:

  python3 peers/repro/backend.py 0 &                        # backend on 127.0.0.1:PORT
  PEER_BACKEND=127.0.0.1:PORT peers/start haproxy-2.6 &     # listening on http://127.0.0.1:P2
  python3 peers/repro/send.py 127.0.0.1:P2 'POST / HTTP/1.1\\r\\nHost: x\\r\\n...'
"""
import codecs
import socket
import sys
import threading

port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
response = codecs.decode(
    sys.argv[2] if len(sys.argv) > 2
    else r"HTTP/1.1 400 Bad Request\r\nContent-Length: 12\r\nConnection: close\r\n\r\nbad request\n",
    "unicode_escape").encode("latin-1")
server = socket.create_server(("127.0.0.1", port))
print("backend on 127.0.0.1:%d" % server.getsockname()[1], flush=True)
count = 0


def serve(conn, n):
    conn.settimeout(0.3)
    got = b""
    try:
        while d := conn.recv(65536):
            got += d
    except socket.timeout:
        pass
    print("backend: connection %d received: %s" % (n, repr(got)[2:-1]), flush=True)
    try:
        conn.sendall(response)
    except OSError:
        pass
    conn.close()


while True:
    conn, _ = server.accept()
    count += 1
    threading.Thread(target=serve, args=(conn, count), daemon=True).start()
