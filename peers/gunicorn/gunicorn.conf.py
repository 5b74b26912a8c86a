# gunicorn's configuration for the gunicorn peer (peers/gunicorn/app.py): the sync worker, the
# listen address from PEER_ADDR, and a "listening on" line once the workers can be reached.
import os

bind = [os.environ.get("PEER_ADDR", "127.0.0.1:0")]
worker_class = "sync"
# One connection at a time per worker. `hijack conform` runs 8 cases at once, each of which
# may hold a worker while it waits for the client (a /close-notify, a body that never comes)
# and ask /events on another connection meanwhile: 16 workers keep every case served.
workers = 16
# The close-notify records' directory is made at import, before the fork.
preload_app = True
accesslog = "-"
errorlog = "-"
loglevel = "info"

# On SIGTERM the workers get 2 s to finish (conform-peers kills the master after 5 s).
graceful_timeout = 2


def when_ready(server):
    host, port = server.LISTENERS[0].sock.getsockname()[:2]
    print("listening on http://%s:%d" % (host, port), flush=True)
