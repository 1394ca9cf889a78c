// Loopback TCP proxy in front of an S3 server for fault and flow-control tests. It relays
// raw bytes unchanged (Host included), so SigV4 signatures made for the proxy's host:port
// still verify at the target.
//
// Per connection it can:
//   - cut or stall the first response after `afterBodyBytes` bytes of its body
//     (bytes after the blank line ending the response headers);
//   - throttle what the client sends (request bytes per second, all connections together).
// It counts open client connections and the bytes relayed in each direction.
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface FaultProxyOptions {
  /** What to do to the first response on each connection once this many body bytes were relayed. */
  response?: { afterBodyBytes: number; action: 'cut' | 'stall' };
  /** Relay at most this many client-to-server bytes per second (all connections together). */
  uploadBytesPerSecond?: number;
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  port: number;
  /** Client connections currently open. */
  openConnections(): number;
  /** Connections accepted so far. */
  totalConnections(): number;
  /** Client-to-server bytes relayed so far (request headers included). */
  bytesUp(): number;
  /** Server-to-client bytes relayed so far (response headers included). */
  bytesDown(): number;
  /** Responses cut or stalled so far. */
  faults(): number;
  /** Lets stalled responses continue (and no new ones stall). */
  release(): void;
  close(): Promise<void>;
}

const HEADER_END = Buffer.from('\r\n\r\n');

export async function startFaultProxy(target: { host: string; port: number }, options: FaultProxyOptions = {}): Promise<FaultProxy> {
  const clients = new Set<net.Socket>();
  const upstreams = new Set<net.Socket>();
  let total = 0;
  let up = 0;
  let down = 0;
  let faults = 0;
  let released = false;
  const releaseWaiters: (() => void)[] = [];

  // Token bucket shared by all connections for the upload direction.
  const rate = options.uploadBytesPerSecond;
  let allowance = rate ?? 0;
  let lastRefill = Date.now();
  const waitForAllowance = (bytes: number): number => {
    if (!rate) return 0;
    const now = Date.now();
    allowance = Math.min(rate, allowance + ((now - lastRefill) / 1000) * rate);
    lastRefill = now;
    allowance -= bytes;
    return allowance >= 0 ? 0 : Math.ceil((-allowance / rate) * 1000);
  };

  const server = net.createServer((client) => {
    total++;
    clients.add(client);
    const upstream = net.connect(target.port, target.host);
    upstreams.add(upstream);
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', () => {
      clients.delete(client);
      upstream.destroy();
    });
    upstream.on('close', () => {
      upstreams.delete(upstream);
      client.destroy();
    });
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);

    // client -> server, throttled
    client.on('data', (chunk: Buffer) => {
      up += chunk.length;
      const ok = upstream.write(chunk);
      const delay = waitForAllowance(chunk.length);
      if (!ok || delay > 0) {
        client.pause();
        let pending = (ok ? 0 : 1) + (delay > 0 ? 1 : 0);
        const resume = () => {
          if (--pending === 0 && !client.destroyed) client.resume();
        };
        if (!ok) upstream.once('drain', resume);
        if (delay > 0) setTimeout(resume, delay);
      }
    });
    client.on('end', () => upstream.end());

    // server -> client, with the optional fault on the first response
    const rule = options.response;
    let headerBuf: Buffer | undefined = Buffer.alloc(0); // until the header end is seen
    let bodySeen = 0;
    let faulted = false;
    let held: Buffer[] | undefined; // while stalled
    const send = (chunk: Buffer) => {
      if (chunk.length === 0) return;
      down += chunk.length;
      if (!client.write(chunk)) {
        upstream.pause();
        client.once('drain', () => {
          if (!held) upstream.resume();
        });
      }
    };
    upstream.on('data', (chunk: Buffer) => {
      if (!rule || faulted) {
        if (held) held.push(chunk);
        else send(chunk);
        return;
      }
      let bodyPart = chunk;
      if (headerBuf) {
        const all = Buffer.concat([headerBuf, chunk]);
        const end = all.indexOf(HEADER_END);
        if (end < 0) {
          headerBuf = all;
          send(chunk);
          return;
        }
        const headerLen = end + HEADER_END.length;
        const fromChunk = headerLen - headerBuf.length; // header bytes inside this chunk
        headerBuf = undefined;
        send(chunk.subarray(0, fromChunk));
        bodyPart = chunk.subarray(fromChunk);
      }
      const room = rule.afterBodyBytes - bodySeen;
      if (bodyPart.length < room) {
        bodySeen += bodyPart.length;
        send(bodyPart);
        return;
      }
      send(bodyPart.subarray(0, room));
      bodySeen += room;
      faulted = true;
      faults++;
      if (rule.action === 'cut') {
        // Let what was written reach the client, then close both sides mid-body.
        client.end(() => closeBoth());
        upstream.destroy();
        return;
      }
      if (released) {
        send(bodyPart.subarray(room));
        return;
      }
      held = [bodyPart.subarray(room)];
      upstream.pause();
      releaseWaiters.push(() => {
        const chunks = held ?? [];
        held = undefined;
        for (const c of chunks) send(c);
        if (!client.destroyed) upstream.resume();
      });
    });
    upstream.on('end', () => {
      if (held) releaseWaiters.push(() => client.end());
      else client.end();
    });
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
    openConnections: () => clients.size,
    totalConnections: () => total,
    bytesUp: () => up,
    bytesDown: () => down,
    faults: () => faults,
    release: () => {
      released = true;
      for (const w of releaseWaiters.splice(0)) w();
    },
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of [...clients, ...upstreams]) s.destroy();
      })),
  };
}
