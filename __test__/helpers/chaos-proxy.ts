// Loopback HTTP/1.1-aware TCP proxy for fault tests, between the backend and s3s-fs.
//
// It relays raw bytes unchanged (Host included), so SigV4 signatures made for the proxy's
// host:port still verify at the target, but it frames requests (Content-Length or chunked)
// so that faults apply per request, also on kept-alive connections. One upstream connection
// per client connection, opened only when a request is forwarded.
//
// Faults, switchable at run time (rules are checked in order when a request head arrives;
// the first whose `match` fits and whose `times` is not used up applies to that request):
//   - slowDown:      answer `503 SlowDown` (S3 XML error body) without forwarding; the request
//                    body is read and discarded first; `keepAlive: false` closes afterwards.
//   - respond:       the same with any status and body (e.g. 500 InternalError, an HTML 502).
//   - garbage:       answer with these bytes (not HTTP) and close.
//   - resetRequest:  forward the head and `afterBodyBytes` body bytes, then reset (RST) the
//                    client connection and drop the upstream one (a cut upload).
//   - resetResponse: forward the request; reset once `afterBodyBytes` bytes of the response
//                    body were relayed (a cut download); a negative count resets before
//                    any byte of the answer (the server did the work, the client never hears).
//   - cutResponse:   the same, but a clean close (FIN): a body shorter than its Content-Length.
//   - stallRequest:  without `afterBodyBytes`: accept and read the request, never forward
//                    it and never answer. With it: forward the head and that many body bytes,
//                    then stop reading from the client (TCP backpressure on the upload).
//   - stallResponse: forward the request; relay `afterBodyBytes` response body bytes, then
//                    relay nothing more (the connection stays open).
//   - delay:         hold the request `ms` before forwarding it.
// and per connection: `refuseConnections(n)` closes the next n connections at once.
//
// A request stalled with `afterBodyBytes` keeps its upstream connection (and so the server's
// half-received upload) until dropAll(): a socket the proxy stopped reading does not notice
// that the client went away, as a real server would after its own idle timeout.
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export type ChaosAction =
  | { kind: 'slowDown'; keepAlive?: boolean }
  | { kind: 'respond'; status: number; reason?: string; body?: string; contentType?: string; keepAlive?: boolean }
  | { kind: 'garbage'; bytes: Buffer }
  | { kind: 'resetRequest'; afterBodyBytes: number }
  | { kind: 'resetResponse'; afterBodyBytes: number }
  | { kind: 'cutResponse'; afterBodyBytes: number }
  | { kind: 'stallRequest'; afterBodyBytes?: number }
  | { kind: 'stallResponse'; afterBodyBytes: number }
  | { kind: 'delay'; ms: number };

export interface RequestMatch {
  /** e.g. 'PUT' or ['GET', 'HEAD']. */
  method?: string | string[];
  /** Tested against the request target (path + query). */
  url?: RegExp;
}

export interface ChaosRule {
  action: ChaosAction;
  /** Requests it applies to, then it is spent. Default: every matching request. */
  times?: number;
  match?: RequestMatch;
}

export interface ChaosRequest {
  /** Index of the client connection it came on (0-based). */
  connection: number;
  method: string;
  url: string;
  /** `content-length` of the request, when given. */
  contentLength?: number;
  /** What the proxy did: 'forward' or a fault kind. */
  action: 'forward' | ChaosAction['kind'];
  at: number;
}

/** What an S3 request is, from its method and query (path-style or virtual-hosted). */
export function s3Op(r: Pick<ChaosRequest, 'method' | 'url'>): string {
  const q = r.url.includes('?') ? r.url.slice(r.url.indexOf('?')) : '';
  if (r.method === 'POST' && /[?&]uploads(=|&|$)/.test(q)) return 'create';
  if (r.method === 'POST' && /[?&]uploadId=/.test(q)) return 'complete';
  if (r.method === 'PUT' && /[?&]partNumber=/.test(q)) return 'part';
  if (r.method === 'DELETE' && /[?&]uploadId=/.test(q)) return 'abort';
  return r.method.toLowerCase(); // put, get, head, delete
}

export interface ChaosProxy {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  port: number;
  /** Every request head seen, in order. */
  requests: ChaosRequest[];
  /** Adds a rule (after the existing ones); returns it, so `times` left can be read. */
  inject(rule: ChaosRule): Required<Pick<ChaosRule, 'times'>> & ChaosRule;
  slowDown(times?: number, opts?: { keepAlive?: boolean; match?: RequestMatch }): void;
  resetRequest(afterBodyBytes: number, times?: number, match?: RequestMatch): void;
  resetResponse(afterBodyBytes: number, times?: number, match?: RequestMatch): void;
  /** Like resetResponse, with a clean close (FIN) instead of a reset. */
  cutResponse(afterBodyBytes: number, times?: number, match?: RequestMatch): void;
  /** Answer with this status and body instead of forwarding (S3 XML error when `code` is given). */
  respond(status: number, opts?: { code?: string; message?: string; body?: string; contentType?: string; reason?: string; keepAlive?: boolean; times?: number; match?: RequestMatch }): void;
  /** Answer with these bytes (not HTTP) and close. */
  garbage(bytes: Buffer, times?: number, match?: RequestMatch): void;
  stallRequest(afterBodyBytes?: number, times?: number, match?: RequestMatch): void;
  stallResponse(afterBodyBytes: number, times?: number, match?: RequestMatch): void;
  delay(ms: number, times?: number, match?: RequestMatch): void;
  /** Close the next `times` connections as soon as they are accepted. */
  refuseConnections(times?: number): void;
  /** Remove every rule and connection refusal (connections already faulted stay so). */
  clear(): void;
  /** Forget the request log and counters. */
  resetLog(): void;
  /** Send forwarded requests to another port from now on (new connections only). */
  retarget(port: number): void;
  /** Client connections accepted (refused ones included). */
  totalConnections(): number;
  /** Client connections currently open. */
  openConnections(): number;
  /** Connections closed at once by refuseConnections. */
  refused(): number;
  /** Faults applied so far (by kind; a rule counts when its fault actually happened). */
  faults(): Record<string, number>;
  /** Destroy every open connection (client and upstream sides). */
  dropAll(): void;
  close(): Promise<void>;
}

const CRLF2 = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');

interface Head {
  method: string;
  url: string;
  headers: Map<string, string>;
  raw: Buffer;
}

function parseHead(raw: Buffer): Head {
  const text = raw.toString('latin1');
  const [requestLine, ...lines] = text.split('\r\n');
  const [method = '', url = ''] = requestLine.split(' ');
  const headers = new Map<string, string>();
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  return { method, url, headers, raw };
}

/** An S3 XML error body. */
export function s3ErrorXml(code: string, message: string, requestId = 'chaos'): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${message}</Message><RequestId>${requestId}</RequestId><HostId>chaos-proxy</HostId></Error>`
  );
}

function cannedResponse(
  method: string,
  requestId: string,
  keepAlive: boolean,
  status = 503,
  reason = 'Slow Down',
  body = s3ErrorXml('SlowDown', 'Please reduce your request rate.', requestId),
  contentType = 'application/xml',
): Buffer {
  const head = [
    `HTTP/1.1 ${status} ${reason}`,
    `Content-Type: ${contentType}`,
    `Content-Length: ${Buffer.byteLength(body)}`,
    `x-amz-request-id: ${requestId}`,
    `Date: ${new Date().toUTCString()}`,
    `Connection: ${keepAlive ? 'keep-alive' : 'close'}`,
    '',
    '',
  ].join('\r\n');
  // HEAD answers carry the headers of the body they would have, but no body.
  return Buffer.from(method === 'HEAD' ? head : head + body, 'latin1');
}

/** Actions that answer without forwarding the request. */
const answersItself = (a: ChaosAction | undefined) => a?.kind === 'slowDown' || a?.kind === 'respond' || a?.kind === 'garbage';

function matches(m: RequestMatch | undefined, head: Head): boolean {
  if (!m) return true;
  if (m.method !== undefined) {
    const methods = Array.isArray(m.method) ? m.method : [m.method];
    if (!methods.includes(head.method)) return false;
  }
  if (m.url && !m.url.test(head.url)) return false;
  return true;
}

export async function startChaosProxy(target: { host: string; port: number }): Promise<ChaosProxy> {
  let targetPort = target.port;
  const rules: (ChaosRule & { times: number })[] = [];
  let refuseLeft = 0;
  let refused = 0;
  let total = 0;
  let requestIds = 0;
  const requests: ChaosRequest[] = [];
  const faultCounts: Record<string, number> = {};
  const sockets = new Set<net.Socket>();
  const clients = new Set<net.Socket>();
  const count = (kind: string) => (faultCounts[kind] = (faultCounts[kind] ?? 0) + 1);

  const pickRule = (head: Head): ChaosAction | undefined => {
    for (const rule of rules) {
      if (rule.times > 0 && matches(rule.match, head)) {
        rule.times -= 1;
        return rule.action;
      }
    }
    return undefined;
  };

  const server = net.createServer((client) => {
    const connection = total++;
    if (refuseLeft > 0) {
      refuseLeft -= 1;
      refused += 1;
      client.on('error', () => {});
      client.destroy();
      return;
    }
    clients.add(client);
    sockets.add(client);
    client.on('close', () => {
      clients.delete(client);
      sockets.delete(client);
      upstream?.destroy();
    });
    client.on('error', () => kill(false));

    let upstream: net.Socket | undefined;
    let dead = false;
    const kill = (reset: boolean) => {
      if (dead) return;
      dead = true;
      if (reset && !client.destroyed) client.resetAndDestroy();
      else client.destroy();
      upstream?.destroy();
    };

    // ---- server -> client: faults on the response of the current request ----
    let respAction: ChaosAction | undefined;
    let respHeader: Buffer | undefined; // bytes of the current response head so far
    let respBody = 0;
    let respStalled = false;

    const toClient = (data: Buffer, then?: () => void) => {
      if (data.length === 0 && !then) return;
      if (!client.write(data, then ? () => then() : undefined)) upstream?.pause();
    };
    const onUpstreamData = (chunk: Buffer) => {
      if (dead || respStalled) return;
      const act = respAction;
      if (!act || (act.kind !== 'resetResponse' && act.kind !== 'cutResponse' && act.kind !== 'stallResponse')) {
        toClient(chunk);
        return;
      }
      if (act.afterBodyBytes < 0) {
        // Before any byte of the answer: the request was processed, the client never knows.
        count(act.kind);
        respStalled = true;
        upstream?.pause();
        if (act.kind === 'stallResponse') return;
        if (act.kind === 'resetResponse') kill(true);
        else {
          dead = true;
          client.end();
          upstream?.destroy();
        }
        return;
      }
      let rest = chunk;
      // Skip to the end of the (final, non-1xx) response head.
      while (respHeader !== undefined) {
        const all = Buffer.concat([respHeader, rest]);
        const end = all.indexOf(CRLF2);
        if (end < 0) {
          respHeader = all;
          toClient(rest);
          return;
        }
        const headLen = end + CRLF2.length;
        const fromRest = headLen - respHeader.length;
        toClient(rest.subarray(0, fromRest));
        rest = rest.subarray(fromRest);
        // An interim 100 Continue: the real head follows.
        respHeader = /^HTTP\/1\.[01] 1\d\d/.test(all.subarray(0, 12).toString('latin1')) ? Buffer.alloc(0) : undefined;
      }
      const room = act.afterBodyBytes - respBody;
      if (rest.length < room) {
        respBody += rest.length;
        toClient(rest);
        return;
      }
      respBody += room;
      count(act.kind);
      if (act.kind === 'resetResponse' || act.kind === 'cutResponse') {
        // Let what was relayed reach the client, then reset (or close cleanly).
        respStalled = true;
        upstream?.pause();
        if (act.kind === 'resetResponse') toClient(rest.subarray(0, room), () => kill(true));
        else {
          dead = true;
          client.end(rest.subarray(0, room));
          upstream?.destroy();
        }
        return;
      }
      toClient(rest.subarray(0, room));
      respStalled = true;
      upstream?.pause();
    };

    const openUpstream = (): net.Socket => {
      if (upstream) return upstream;
      const up = net.connect(targetPort, target.host);
      upstream = up;
      sockets.add(up);
      up.on('data', onUpstreamData);
      up.on('end', () => {
        if (!respStalled) client.end();
      });
      up.on('error', () => kill(true));
      up.on('close', () => {
        sockets.delete(up);
        if (!respStalled) kill(false);
      });
      // Backpressure from the client to the upstream.
      client.on('drain', () => {
        if (!respStalled) up.resume();
      });
      return up;
    };
    const toUpstream = (data: Buffer) => {
      if (data.length === 0 || dead) return;
      const up = openUpstream();
      if (!up.write(data)) {
        client.pause();
        up.once('drain', () => {
          if (!suspended && !reqStalled && !dead) client.resume();
        });
      }
    };

    // ---- client -> server: request framing ----
    type Body =
      | { mode: 'none' }
      | { mode: 'fixed'; left: number }
      | { mode: 'chunked'; state: 'size' | 'data' | 'data-crlf' | 'trailer'; left: number; line: Buffer };
    let phase: 'head' | 'body' = 'head';
    let headBuf = Buffer.alloc(0);
    let body: Body = { mode: 'none' };
    let action: ChaosAction | undefined; // for the current request
    let method = '';
    let bodySeen = 0; // body bytes (framing included) of the current request
    let reqStalled = false; // stallRequest with afterBodyBytes: nothing more is read
    let suspended = false;
    const pending: Buffer[] = [];

    /** What to do with `data`, a piece of the current request's body (or framing). */
    const bodyBytes = (data: Buffer) => {
      if (data.length === 0) return;
      const act = action;
      if (answersItself(act) || (act?.kind === 'stallRequest' && act.afterBodyBytes === undefined)) {
        bodySeen += data.length; // discarded
        return;
      }
      if (act?.kind === 'resetRequest' || (act?.kind === 'stallRequest' && act.afterBodyBytes !== undefined)) {
        const room = act.afterBodyBytes! - bodySeen;
        if (data.length < room) {
          bodySeen += data.length;
          toUpstream(data);
          return;
        }
        toUpstream(data.subarray(0, Math.max(0, room)));
        bodySeen += Math.max(0, room);
        fireRequestFault(act);
        return;
      }
      bodySeen += data.length;
      toUpstream(data);
    };

    const fireRequestFault = (act: ChaosAction) => {
      count(act.kind);
      if (act.kind === 'resetRequest') {
        kill(true);
      } else {
        reqStalled = true;
        client.pause();
      }
    };

    const requestDone = () => {
      if (action?.kind === 'garbage') {
        count('garbage');
        dead = true;
        client.end(action.bytes);
        return;
      }
      if (action?.kind === 'slowDown' || action?.kind === 'respond') {
        const keepAlive = action.keepAlive !== false;
        count(action.kind);
        const id = `chaos-${++requestIds}`;
        const reply =
          action.kind === 'slowDown'
            ? cannedResponse(method, id, keepAlive)
            : cannedResponse(method, id, keepAlive, action.status, action.reason ?? 'Error', action.body ?? '', action.contentType ?? 'application/xml');
        if (keepAlive) client.write(reply);
        else {
          client.end(reply);
          dead = true;
        }
      } else if (action?.kind === 'stallRequest' && action.afterBodyBytes === undefined) {
        count('stallRequest');
        // Read on (and discard) whatever the client sends, never answer.
        action = { kind: 'stallRequest' };
        phase = 'body';
        body = { mode: 'fixed', left: Number.POSITIVE_INFINITY };
        return;
      }
      phase = 'head';
      body = { mode: 'none' };
    };

    const startRequest = (head: Head) => {
      method = head.method;
      bodySeen = 0;
      const te = head.headers.get('transfer-encoding')?.toLowerCase() ?? '';
      const cl = head.headers.get('content-length');
      if (te.includes('chunked')) body = { mode: 'chunked', state: 'size', left: 0, line: Buffer.alloc(0) };
      else if (cl !== undefined && Number(cl) > 0) body = { mode: 'fixed', left: Number(cl) };
      else body = { mode: 'none' };
      action = pickRule(head);
      requests.push({
        connection,
        method: head.method,
        url: head.url,
        contentLength: cl === undefined ? undefined : Number(cl),
        action: action?.kind ?? 'forward',
        at: Date.now(),
      });
      // The response that follows belongs to this request (HTTP/1.1 clients here do not pipeline).
      respAction = action;
      respHeader = Buffer.alloc(0);
      respBody = 0;
      const forwardsHead = !(answersItself(action) || (action?.kind === 'stallRequest' && action.afterBodyBytes === undefined));
      const go = () => {
        if (forwardsHead) toUpstream(head.raw);
        if ((action?.kind === 'slowDown' || action?.kind === 'respond') && /100-continue/i.test(head.headers.get('expect') ?? '')) {
          // The client waits for 100 before sending its body: answer now and close, since
          // whether the body still follows is up to the client.
          action = { ...action, keepAlive: false };
          body = { mode: 'none' };
        }
        if ((action?.kind === 'resetRequest' || action?.kind === 'stallRequest') && action.afterBodyBytes === 0) {
          fireRequestFault(action);
          return;
        }
        phase = 'body';
        if (body.mode === 'none') requestDone();
      };
      if (action?.kind === 'delay') {
        suspended = true;
        client.pause();
        setTimeout(() => {
          count('delay');
          suspended = false;
          go();
          if (!dead && !reqStalled) {
            client.resume();
            pump();
          }
        }, action.ms);
        return;
      }
      go();
    };

    const pump = () => {
      while (pending.length && !suspended && !dead && !reqStalled) {
        let data = pending.shift()!;
        if (phase === 'head') {
          const all = Buffer.concat([headBuf, data]);
          const end = all.indexOf(CRLF2);
          if (end < 0) {
            headBuf = all;
            continue;
          }
          const headLen = end + CRLF2.length;
          headBuf = Buffer.alloc(0);
          const rest = all.subarray(headLen);
          if (rest.length) pending.unshift(rest);
          startRequest(parseHead(all.subarray(0, headLen)));
          continue;
        }
        // phase === 'body'
        if (body.mode === 'fixed') {
          const take = Math.min(body.left, data.length);
          bodyBytes(data.subarray(0, take));
          body.left -= take;
          if (take < data.length) pending.unshift(data.subarray(take));
          if (body.left === 0 && !dead && !reqStalled) requestDone();
          continue;
        }
        if (body.mode === 'chunked') {
          const b = body;
          while (data.length && !dead && !reqStalled && phase === 'body') {
            if (b.state === 'data') {
              const take = Math.min(b.left, data.length);
              bodyBytes(data.subarray(0, take));
              b.left -= take;
              data = data.subarray(take);
              if (b.left === 0) {
                b.state = 'data-crlf';
                b.left = 2;
              }
              continue;
            }
            if (b.state === 'data-crlf') {
              const take = Math.min(b.left, data.length);
              bodyBytes(data.subarray(0, take));
              b.left -= take;
              data = data.subarray(take);
              if (b.left === 0) b.state = 'size';
              continue;
            }
            // 'size' or 'trailer': a line at a time
            const all = Buffer.concat([b.line, data]);
            const end = all.indexOf(CRLF);
            if (end < 0) {
              b.line = all;
              bodyBytes(data);
              data = Buffer.alloc(0);
              continue;
            }
            const lineLen = end + CRLF.length;
            const fromData = lineLen - b.line.length;
            bodyBytes(data.subarray(0, fromData));
            data = data.subarray(fromData);
            const line = all.subarray(0, end).toString('latin1');
            b.line = Buffer.alloc(0);
            if (b.state === 'size') {
              const size = parseInt(line.split(';')[0], 16);
              if (size === 0) b.state = 'trailer';
              else {
                b.state = 'data';
                b.left = size;
              }
            } else if (line === '') {
              requestDone();
            }
          }
          if (data.length) pending.unshift(data);
          continue;
        }
        // A body without framing should not happen; pass it on.
        toUpstream(data);
      }
    };

    client.on('data', (chunk: Buffer) => {
      pending.push(chunk);
      pump();
    });
    client.on('end', () => {
      if (upstream && !dead) upstream.end();
      else if (!upstream) client.end();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;

  const add = (action: ChaosAction, times = Number.POSITIVE_INFINITY, match?: RequestMatch) => {
    const rule = { action, times, match };
    rules.push(rule);
    return rule;
  };
  let closing: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    requests,
    inject: (rule) => add(rule.action, rule.times, rule.match),
    slowDown: (times, opts) => void add({ kind: 'slowDown', keepAlive: opts?.keepAlive }, times, opts?.match),
    resetRequest: (afterBodyBytes, times, match) => void add({ kind: 'resetRequest', afterBodyBytes }, times, match),
    resetResponse: (afterBodyBytes, times, match) => void add({ kind: 'resetResponse', afterBodyBytes }, times, match),
    cutResponse: (afterBodyBytes, times, match) => void add({ kind: 'cutResponse', afterBodyBytes }, times, match),
    respond: (status, o = {}) =>
      void add(
        {
          kind: 'respond',
          status,
          reason: o.reason,
          keepAlive: o.keepAlive,
          contentType: o.contentType,
          body: o.body ?? (o.code ? s3ErrorXml(o.code, o.message ?? o.code) : ''),
        },
        o.times,
        o.match,
      ),
    garbage: (bytes, times, match) => void add({ kind: 'garbage', bytes }, times, match),
    stallRequest: (afterBodyBytes, times, match) => void add({ kind: 'stallRequest', afterBodyBytes }, times, match),
    stallResponse: (afterBodyBytes, times, match) => void add({ kind: 'stallResponse', afterBodyBytes }, times, match),
    delay: (ms, times, match) => void add({ kind: 'delay', ms }, times, match),
    refuseConnections: (times = Number.POSITIVE_INFINITY) => {
      refuseLeft = times;
    },
    clear: () => {
      rules.splice(0);
      refuseLeft = 0;
    },
    resetLog: () => {
      requests.splice(0);
      refused = 0;
      for (const k of Object.keys(faultCounts)) delete faultCounts[k];
    },
    retarget: (p) => {
      targetPort = p;
    },
    totalConnections: () => total,
    openConnections: () => clients.size,
    refused: () => refused,
    faults: () => ({ ...faultCounts }),
    dropAll: () => {
      for (const s of sockets) s.destroy();
    },
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        rules.splice(0);
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      })),
  };
}
