// A 127.0.0.1 port whose connections never complete: a child process listens with the
// smallest backlog and never accepts (its event loop is blocked in Atomics.wait, which uses
// no CPU); once its accept queue is full the kernel drops further SYNs, so a client's
// connect() neither succeeds nor fails. That is what a connect timeout is for.
import { spawn } from 'node:child_process';
import net from 'node:net';

export interface UnacceptingListener {
  port: number;
  close(): Promise<void>;
}

const CHILD = `
const net = require('node:net');
const srv = net.createServer();
srv.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
  process.stdout.write(String(srv.address().port) + '\\n', () => {
    // Block the event loop (no accept) for at most 120 s, then exit.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120000);
    process.exit(0);
  });
});
`;

export async function startUnacceptingListener(): Promise<UnacceptingListener> {
  const child = spawn(process.execPath, ['-e', CHILD], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.stdout!.setEncoding('utf8').once('data', (d: string) => resolve(Number(d.trim())));
  });
  // Fill the accept queue (backlog 1 queues two; Node reads 0 as "the default") so later SYNs are dropped.
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 4; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    fillers.push(s);
  }
  await new Promise((r) => setTimeout(r, 200));
  return {
    port,
    close: async () => {
      for (const s of fillers) s.destroy();
      child.kill('SIGKILL');
      await exited;
    },
  };
}
