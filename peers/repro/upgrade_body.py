"""An upgrade request with a Content-Length body, then new-protocol bytes: what does /echo echo?
SPEC.md#hijack-handover: after the 101 the body is discarded and the echo is exactly TAIL.
Usage: python3 peers/repro/upgrade_body.py HOST:PORT [BODY_BYTES]"""
import socket, sys, time

host, port = sys.argv[1].rsplit(":", 1)
n = int(sys.argv[2]) if len(sys.argv) > 2 else 102400
body = bytes(b"0123456789abcdef"[i % 16] for i in range(n))
tail = b"after the body"
s = socket.create_connection((host, int(port)))
s.settimeout(3)
s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n"
          b"Content-Length: %d\r\n\r\n" % n + body)
time.sleep(0.2)
s.sendall(tail)
s.shutdown(socket.SHUT_WR)
out = b""
try:
    while (d := s.recv(65536)):
        out += d
except socket.timeout:
    out += b"<timeout>"
head, _, echoed = out.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode(), "| echoed", len(echoed), "bytes:",
      echoed[:32], "...", echoed[-20:])
print("PASS" if echoed == tail else "FAIL: expected exactly %r" % tail)
