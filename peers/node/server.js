// The Node.js `http` peer of `hijack conform`: the conformance endpoints of
// SPEC.md#conformance-endpoints on Node's own server, handing over with the 'upgrade' event.
// No npm dependencies. The same file is the `bun` and `deno` peers: Bun's and Deno's
// `node:http` run it unchanged (peers/README.md).
//
//   node --expose-gc peers/node/server.js [ADDR]   (default 127.0.0.1:0; a bare port means
//                                                  127.0.0.1:PORT)
//   bun peers/node/server.js [ADDR]
//   deno run --allow-net --v8-flags=--expose-gc peers/node/server.js [ADDR]
//
// Prints "listening on http://127.0.0.1:PORT" on stdout once it accepts connections.
'use strict';

const http = require('http');

// The runtime, for the answers' bodies: Node.js, or Bun or Deno running this file.
const runtime =
  typeof Bun !== 'undefined'
    ? `Bun ${Bun.version} node:http`
    : typeof Deno !== 'undefined'
      ? `Deno ${Deno.version.deno} node:http`
      : `Node.js ${process.version} http`;

// id -> {id, close_notify, after_ms}: what /close-notify/{id} recorded.
const events = new Map();
// Every part a /hold upgrade handed over: the socket and the head Buffer.
let held = [];

function hasToken(value, token) {
  if (value === undefined) return false;
  const values = Array.isArray(value) ? value : [value];
  return values.some((v) => v.split(',').some((t) => t.trim().toLowerCase() === token));
}

function wantsUpgrade(req, protocol) {
  return hasToken(req.headers.connection, 'upgrade') && hasToken(req.headers.upgrade, protocol);
}

function text(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(body);
}

function json(res, status, value) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(value) + '\n');
}

function pathOf(req) {
  const q = req.url.indexOf('?');
  return q < 0 ? req.url : req.url.slice(0, q);
}

function closeNotify(req, res, id) {
  const query = new URL(req.url, 'http://peer').searchParams;
  let timeoutMs = 5000;
  const t = Number.parseInt(query.get('timeout_ms') ?? '', 10);
  if (Number.isFinite(t) && t >= 0) timeoutMs = t;
  events.set(id, { id, close_notify: 'pending', after_ms: null });
  const started = Date.now();
  let done = false;
  const timer = setTimeout(() => {
    if (done) return;
    done = true;
    events.set(id, { id, close_notify: 'timeout', after_ms: Date.now() - started });
    text(res, 200, 'still here\n');
  }, timeoutMs);
  // 'close' before the response finished is Node's close-notify: the socket closed or the
  // server aborted the request (on the client's end of stream, since httpAllowHalfOpen is
  // off by default).
  res.on('close', () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    events.set(id, { id, close_notify: 'fired', after_ms: Date.now() - started });
  });
}

function stats(res) {
  // heapUsed after a full collection, plus memory outside the V8 heap (`external` already
  // includes `arrayBuffers`, Buffers among them, so it is not added twice).
  if (typeof Bun !== 'undefined') {
    // Bun has no global.gc: Bun.gc(true) runs a full, synchronous collection.
    Bun.gc(true);
    Bun.gc(true);
  } else {
    global.gc();
    global.gc();
  }
  const m = process.memoryUsage();
  server.getConnections((err, count) => {
    json(res, 200, { live_heap_bytes: m.heapUsed + m.external, connections: err ? null : count });
  });
}

const server = http.createServer((req, res) => {
  const path = pathOf(req);
  if (path === '/echo') {
    // An upgrade request goes to 'upgrade'; here it lacks one of the two fields.
    return text(res, 426, 'send Connection: Upgrade and Upgrade: echo\n');
  }
  if (path === '/hold') {
    return text(res, 426, 'send GET with Connection: Upgrade and Upgrade: hold\n');
  }
  if (path === '/close-notify' || path.startsWith('/close-notify/')) {
    return closeNotify(req, res, path.slice('/close-notify'.length).replace(/^\//, ''));
  }
  if (path.startsWith('/events/')) {
    const ev = events.get(path.slice('/events/'.length));
    return ev ? json(res, 200, ev) : text(res, 404, 'no such close-notify request\n');
  }
  if (path === '/release') {
    const taken = held;
    held = [];
    for (const h of taken) h.socket.destroy();
    return json(res, 200, { released: taken.length });
  }
  if (path === '/stats') return stats(res);
  // Any other path: read the whole body, then answer.
  req.on('data', () => {});
  // The body names the request it answers (SPEC.md#conformance-endpoints).
  req.on('end', () => text(res, 200, `${req.method} ${req.url}: hijack conformance peer (${runtime})\n`));
  req.on('error', () => {});
});

// The raw 101 head: after 'upgrade' the socket is the handler's, the server writes nothing.
function switching(protocol) {
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${protocol}\r\nConnection: Upgrade\r\n\r\n`;
}

server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => socket.destroy());
  const path = pathOf(req);
  if (path === '/echo' && wantsUpgrade(req, 'echo')) {
    socket.write(switching('echo'));
    // `head`: the bytes the parser had already read past the request head; they come first.
    if (head.length > 0) socket.write(head);
    socket.on('data', (chunk) => socket.write(chunk));
    // The server socket allows half-open: end our side after the echoed bytes on the client's.
    socket.on('end', () => socket.end());
    return;
  }
  if (path === '/hold' && req.method === 'GET' && wantsUpgrade(req, 'hold')) {
    socket.write(switching('hold'));
    // Nothing more is read: a paused socket leaves bytes in the kernel.
    socket.pause();
    held.push({ socket, head });
    return;
  }
  // An upgrade to anything else: no 101; answer and close, as the request body cannot be
  // told apart from what follows.
  const body =
    path === '/echo' || path === '/hold'
      ? `send Connection: Upgrade and Upgrade: ${path.slice(1)}\n`
      : 'no upgrade here\n';
  const status = path === '/echo' || path === '/hold' ? '426 Upgrade Required' : '200 OK';
  socket.end(
    `HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
});

let addr = process.argv[2] ?? '127.0.0.1:0';
if (!addr.includes(':')) addr = `127.0.0.1:${addr}`;
const colon = addr.lastIndexOf(':');
server.listen(Number(addr.slice(colon + 1)), addr.slice(0, colon), () => {
  const a = server.address();
  process.stdout.write(`listening on http://${a.address}:${a.port}\n`);
});
