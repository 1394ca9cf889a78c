// Loopback TCP relay that stops passing the server's bytes on after `limit` bytes per
// connection (headers included): a response that stalls mid-body, so a client read stays
// pending. Relays bytes unchanged, so SigV4 signatures made for the proxy still verify.
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface StallingProxy {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** Client connections currently open. */
  openConnections(): number;
  /** Connections that reached the limit (their answer is held from then on). */
  stalled(): number;
  close(): Promise<void>;
}

export async function startStallingProxy(target: { host: string; port: number }, limit: number): Promise<StallingProxy> {
  const clients = new Set<net.Socket>();
  const sockets = new Set<net.Socket>();
  let stalled = 0;

  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    clients.add(client);
    sockets.add(client).add(upstream);
    let relayed = 0;
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      const room = limit - relayed;
      if (room <= 0) return;
      client.write(chunk.subarray(0, room));
      relayed += Math.min(chunk.length, room);
      if (relayed >= limit) {
        stalled += 1;
        upstream.pause();
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
    upstream.on('end', () => client.end());
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
