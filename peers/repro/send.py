#!/usr/bin/env python3
"""Sends exact bytes to a server and prints exactly what came back: the reproductions of
peers/FINDINGS.md. Each DATA argument is one write, with Python escapes (\\r, \\n, \\x00);
'+N' between two of them pauses N ms; '--shut' as the last argument half-closes after writing.
Reads until the server closes, or 2 s of silence (printed as <open>).

  python3 peers/repro/send.py 127.0.0.1:PORT 'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'
"""
import codecs
import socket
import sys
import time

host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)))
s.settimeout(2)
args = sys.argv[2:]
shut = args[-1:] == ["--shut"]
for a in args[:-1] if shut else args:
    if a.startswith("+") and a[1:].isdigit():
        time.sleep(int(a[1:]) / 1000)
    else:
        s.sendall(codecs.decode(a, "unicode_escape").encode("latin-1"))
if shut:
    s.shutdown(socket.SHUT_WR)
out = b""
end = "<open>"
try:
    while d := s.recv(65536):
        out += d
    end = "<closed>"
except socket.timeout:
    pass
except ConnectionResetError:
    end = "<reset>"
print(repr(out)[2:-1] + " " + end)
