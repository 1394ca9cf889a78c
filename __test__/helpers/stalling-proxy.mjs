// Loopback TCP relay that stops passing bytes on, per connection, after `limit` bytes in
// one direction (headers included):
//   - 'response': the server's answer stalls mid-body, so a client read stays pending;
//   - 'request': the proxy stops reading what the client sends, so the client's request
//     body backs up (TCP backpressure) and its writes stay pending.
// Relays bytes unchanged, so SigV4 signatures made for the proxy's host:port still verify.
// Plain JavaScript so that child processes of tests can use it too (types: .d.mts).
import net from 'node:net'

export async function startStallingProxy(target, limit, direction = 'response') {
  const clients = new Set()
  const sockets = new Set()
  let stalled = 0

  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host)
    clients.add(client)
    sockets.add(client).add(upstream)
    const [from, to] = direction === 'response' ? [upstream, client] : [client, upstream]
    to.pipe(from) // the other direction flows freely
    let relayed = 0
    from.on('data', (chunk) => {
      const room = limit - relayed
      if (room <= 0) return
      to.write(chunk.subarray(0, room))
      relayed += Math.min(chunk.length, room)
      if (relayed >= limit) {
        stalled += 1
        from.pause()
      }
    })
    const end = () => {
      clients.delete(client)
      client.destroy()
      upstream.destroy()
    }
    for (const s of [client, upstream]) {
      s.on('error', end)
      s.on('close', end)
    }
    from.on('end', () => to.end())
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address()
  return {
    endpoint: `http://127.0.0.1:${port}`,
    openConnections: () => clients.size,
    stalled: () => stalled,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        for (const s of sockets) s.destroy()
      }),
  }
}
