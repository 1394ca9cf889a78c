// Network pieces for network.test.ts, on 127.0.0.1 only. Types: network.d.mts.
//
// startForwardProxy(): an HTTP forward proxy, as corporate networks have: CONNECT tunnels
// (how an https:// request goes through a proxy) and absolute-form requests (`GET
// http://host/path`, how a plain-HTTP request does), each counted with its target, and
// optionally Basic auth (407 without it). Host names under `.localhost` go to 127.0.0.1,
// so virtual-hosted requests (<bucket>.localhost) work without DNS support for them.
//
// startTlsFront(): a TLS endpoint with the test certificate (fixtures/tls) in front of a
// plain S3 server: it decrypts and relays bytes unchanged, so signatures made for its
// host:port verify at the server. Handshakes that fail (the client did not trust the
// certificate) are counted.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'tls');
/** PEM text of the test CA, the server's certificate and key, and an unrelated CA. */
export const TLS_FIXTURES = {
  ca: readFileSync(path.join(fixtures, 'ca.pem'), 'utf8'),
  otherCa: readFileSync(path.join(fixtures, 'other-ca.pem'), 'utf8'),
  cert: readFileSync(path.join(fixtures, 'server.pem'), 'utf8'),
  key: readFileSync(path.join(fixtures, 'server.key'), 'utf8'),
};

const listen = (server) =>
  new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });

/** `*.localhost` and `localhost` are 127.0.0.1 here. */
const resolveHost = (host) => (host === 'localhost' || host.endsWith('.localhost') ? '127.0.0.1' : host.replace(/^\[|\]$/g, ''));

/** Relays bytes both ways; either side failing ends both. */
function relay(a, b) {
  a.pipe(b);
  b.pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
  a.on('close', () => b.destroy());
  b.on('close', () => a.destroy());
}

export async function startForwardProxy(opts = {}) {
  const tunnels = [];
  const forwarded = [];
  const denied = [];
  const sockets = new Set();
  const expected = opts.auth ? `Basic ${Buffer.from(opts.auth).toString('base64')}` : undefined;
  const allowed = (req) => {
    if (!expected || req.headers['proxy-authorization'] === expected) return true;
    denied.push({ method: req.method, target: req.url, proxyAuthorization: req.headers['proxy-authorization'] });
    return false;
  };
  const agent = new http.Agent({ keepAlive: true });

  const server = http.createServer((req, res) => {
    if (!allowed(req)) {
      res.writeHead(407, { 'Proxy-Authenticate': 'Basic realm="test"', 'Content-Length': '0' }).end();
      return;
    }
    let target;
    try {
      target = new URL(req.url);
    } catch {
      res.writeHead(400, { 'Content-Length': '0' }).end();
      return;
    }
    forwarded.push({ method: req.method, target: target.host, proxyAuthorization: req.headers['proxy-authorization'] });
    const headers = { ...req.headers };
    for (const h of ['proxy-authorization', 'proxy-connection', 'expect']) delete headers[h];
    const upstream = http.request(
      { host: resolveHost(target.hostname), port: target.port || 80, method: req.method, path: target.pathname + target.search, headers, agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connect', (req, client, head) => {
    if (!allowed(req)) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    tunnels.push({ target: req.url, proxyAuthorization: req.headers['proxy-authorization'] });
    const i = req.url.lastIndexOf(':');
    const upstream = net.connect(Number(req.url.slice(i + 1)), resolveHost(req.url.slice(0, i)), () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      relay(client, upstream);
    });
    upstream.on('error', () => client.destroy());
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    tunnels,
    forwarded,
    denied,
    count: () => tunnels.length + forwarded.length,
    clear() {
      tunnels.length = 0;
      forwarded.length = 0;
      denied.length = 0;
    },
    close() {
      agent.destroy();
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

export async function startTlsFront(target) {
  let handshakes = 0;
  let failedHandshakes = 0;
  const sockets = new Set();
  const server = tls.createServer({ key: TLS_FIXTURES.key, cert: TLS_FIXTURES.cert }, (socket) => {
    handshakes++;
    const upstream = net.connect(target.port, target.host);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    relay(socket, upstream);
  });
  server.on('tlsClientError', (_err, socket) => {
    failedHandshakes++;
    socket.destroy();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server);
  return {
    port,
    handshakes: () => handshakes,
    failedHandshakes: () => failedHandshakes,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
