// Loopback HTTP reverse proxy that records each request and forwards it byte-for-byte
// (same header names, values and Host) so SigV4 signatures made for the proxy's
// host:port still verify at the target. Use it to assert what the client sends.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Path + query exactly as sent. */
  url: string;
  /** Lowercased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
}

export interface RecordingProxy {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  port: number;
  requests: RecordedRequest[];
  clear(): void;
  close(): Promise<void>;
}

// Methods for which Node's client would otherwise invent `Transfer-Encoding: chunked`.
const BODYLESS_BY_DEFAULT = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

/**
 * `target` is read on every request, so it may be filled in after the proxy has started
 * (needed for virtual-hosted style, where the S3 server must know the proxy's port).
 */
export async function startRecordingProxy(target: { host: string; port: number }): Promise<RecordingProxy> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const agent = new http.Agent({ keepAlive: true });

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, expectContinue: boolean) => {
    const recorded: Record<string, string> = {};
    // Header object keyed by the original spelling; arrays keep repeated headers.
    const outgoing: Record<string, string | string[]> = {};
    const spelling = new Map<string, string>();
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const [name, value] = [req.rawHeaders[i], req.rawHeaders[i + 1]];
      const lower = name.toLowerCase();
      recorded[lower] = lower in recorded ? `${recorded[lower]}, ${value}` : value;
      const key = spelling.get(lower) ?? name;
      spelling.set(lower, key);
      const prev = outgoing[key];
      outgoing[key] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
    }
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: recorded });

    const upstream = http.request({
      host: target.host,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: outgoing,
      setHost: false, // Host is in `outgoing`, unchanged
      agent,
    });
    const sized = 'content-length' in recorded || 'transfer-encoding' in recorded;
    if (!sized && !BODYLESS_BY_DEFAULT.has(req.method ?? '')) upstream.useChunkedEncodingByDefault = false;

    if (expectContinue) {
      // The client holds its body until it sees 100; let the target decide, then relay.
      upstream.on('continue', () => res.writeContinue());
      upstream.flushHeaders();
    }
    upstream.on('response', (up) => {
      res.sendDate = false; // keep the target's Date header only
      res.writeHead(up.statusCode ?? 502, up.statusMessage, up.rawHeaders);
      up.pipe(res);
      up.on('error', () => res.destroy());
    });
    upstream.on('error', (err) => {
      if (res.headersSent) res.destroy();
      else res.writeHead(502, { 'content-type': 'text/plain' }).end(`recording proxy: ${err.message}`);
    });
    // A client that goes away mid-request must cut the upstream request too, so the
    // target sees the same truncated upload the client produced.
    req.on('error', () => upstream.destroy());
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  };

  const server = http.createServer();
  server.on('request', (req, res) => forward(req, res, false));
  server.on('checkContinue', (req, res) => forward(req, res, true));
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    requests,
    clear: () => void requests.splice(0),
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
        agent.destroy();
      })),
  };
}
