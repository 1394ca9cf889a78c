// Loopback TCP relay that stops passing bytes on, per connection, after `limit` bytes in
// one direction (headers included):
//   - 'response': the server's answer stalls mid-body, so a client read stays pending;
//   - 'request': the proxy stops reading what the client sends, so the client's request
//     body backs up (TCP backpressure) and its writes stay pending.
// Relays bytes unchanged, so SigV4 signatures made for the proxy's host:port still verify.
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface StallingProxy {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** Client connections currently open. */
  openConnections(): number;
  /** Connections that reached the limit (held from then on). */
  stalled(): number;
  close(): Promise<void>;
}

export async function startStallingProxy(
  target: { host: string; port: number },
  limit: number,
  direction: 'response' | 'request' = 'response',
): Promise<StallingProxy> {
  const clients = new Set<net.Socket>();
  const sockets = new Set<net.Socket>();
  let stalled = 0;

  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    clients.add(client);
    sockets.add(client).add(upstream);
    const [from, to] = direction === 'response' ? [upstream, client] : [client, upstream];
    // The other direction flows freely.
    (direction === 'response' ? client : upstream).pipe(direction === 'response' ? upstream : client);
    let relayed = 0;
    from.on('data', (chunk: Buffer) => {
      const room = limit - relayed;
      if (room <= 0) return;
      to.write(chunk.subarray(0, room));
      relayed += Math.min(chunk.length, room);
      if (relayed >= limit) {
        stalled += 1;
        from.pause();
      }
    });
    const end = () => {
      clients.delete(client);
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
    from.on('end', () => to.end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    openConnections: () => clients.size,
    stalled: () => stalled,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
