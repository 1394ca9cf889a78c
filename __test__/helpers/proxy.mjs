// The tests' one proxy: a loopback HTTP/1.1-aware TCP relay between a client (the backend,
// a raw signed request, a worker) and an S3 server. It records every request, injects
// faults by rule and can throttle or hold traffic. Types and API: proxy.d.mts.
// Plain JavaScript so that child processes of tests can use it too.
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
//                    hold the rest (the connection stays open) until release().
//   - corruptResponse: forward the request; relay the response with the body byte at
//                    `byteIndex` (from 0, counted after the head; chunk framing counts too)
//                    changed (XOR 0xff), everything else unchanged.
//   - delay:         hold the request `ms` before forwarding it.
// and per connection: `refuseConnections(n)` closes the next n connections at once;
// `throttleUpload(bytesPerSecond)` slows what clients send (all connections together).
//
// A request stalled with `afterBodyBytes` keeps its upstream connection (and so the server's
// half-received upload) until dropAll(): a socket the proxy stopped reading does not notice
// that the client went away, as a real server would after its own idle timeout.
import net from 'node:net';

const CRLF2 = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');

/** What an S3 request is, from its method and query (path-style or virtual-hosted). */
export function s3Op(r) {
  const q = r.url.includes('?') ? r.url.slice(r.url.indexOf('?')) : '';
  if (r.method === 'POST' && /[?&]uploads(=|&|$)/.test(q)) return 'create';
  if (r.method === 'POST' && /[?&]uploadId=/.test(q)) return 'complete';
  if (r.method === 'PUT' && /[?&]partNumber=/.test(q)) return 'part';
  if (r.method === 'DELETE' && /[?&]uploadId=/.test(q)) return 'abort';
  return r.method.toLowerCase(); // put, get, head, delete
}

/** An S3 XML error body. */
export function s3ErrorXml(code, message, requestId = 'proxy') {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${message}</Message><RequestId>${requestId}</RequestId><HostId>test-proxy</HostId></Error>`
  );
}

/** Method, target and headers (lowercased names; repeated ones joined with ", ") of a request head. */
function parseHead(raw) {
  const [requestLine, ...lines] = raw.toString('latin1').split('\r\n');
  const [method = '', url = ''] = requestLine.split(' ');
  const headers = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return { method, url, headers, raw };
}

function cannedResponse(method, requestId, keepAlive, status, reason, body, contentType) {
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
const answersItself = (a) => a?.kind === 'slowDown' || a?.kind === 'respond' || a?.kind === 'garbage';
/** Actions that never forward the request head. */
const keepsHead = (a) => answersItself(a) || (a?.kind === 'stallRequest' && a.afterBodyBytes === undefined);
/** Actions on the response body. */
const onResponse = (a) => a?.kind === 'resetResponse' || a?.kind === 'cutResponse' || a?.kind === 'stallResponse' || a?.kind === 'corruptResponse';

function matches(m, head) {
  if (!m) return true;
  if (m.method !== undefined && ![m.method].flat().includes(head.method)) return false;
  if (m.url && !m.url.test(head.url)) return false;
  return true;
}

/** Whether a request targets `key` (its path ends in /key, path-style or virtual-hosted). */
const isFor = (r, key) => decodeURIComponent(r.url.split('?')[0]).endsWith(`/${key}`);

/**
 * `target` is read whenever an upstream connection opens, so its port may be filled in after
 * the proxy started (virtual-hosted style, where the server must know the proxy's port).
 */
export async function startProxy(target) {
  const rules = [];
  let refuseLeft = 0;
  let refused = 0;
  let total = 0;
  let requestIds = 0;
  let up = 0;
  let down = 0;
  const requests = [];
  const faultCounts = {};
  const sockets = new Set();
  const clients = new Set();
  /** release() callbacks of responses held by stallResponse. */
  const held = new Set();
  const count = (kind) => (faultCounts[kind] = (faultCounts[kind] ?? 0) + 1);

  // Token bucket shared by all connections for the upload direction (throttleUpload).
  let rate;
  let allowance = 0;
  let lastRefill = 0;
  /** How long to pause a client that just sent `bytes`. */
  const throttleMs = (bytes) => {
    if (!rate) return 0;
    const now = Date.now();
    allowance = Math.min(rate, allowance + ((now - lastRefill) / 1000) * rate);
    lastRefill = now;
    allowance -= bytes;
    return allowance >= 0 ? 0 : Math.ceil((-allowance / rate) * 1000);
  };

  const pickRule = (head) => {
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
      held.delete(release);
      upstream?.destroy();
    });
    client.on('error', () => kill(false));

    let upstream;
    let dead = false;
    const kill = (reset) => {
      if (dead) return;
      dead = true;
      if (reset && !client.destroyed) client.resetAndDestroy();
      else client.destroy();
      upstream?.destroy();
    };

    // ---- client reading: paused while any of these holds ----
    let suspended = false; // a delay rule holds the request
    let reqStalled = false; // stallRequest with afterBodyBytes: nothing more is read
    let upstreamFull = false; // waiting for the upstream to drain
    let throttled = false; // throttleUpload
    const resumeClient = () => {
      if (dead || suspended || reqStalled || upstreamFull || throttled) return;
      client.resume();
      pump();
    };

    // ---- server -> client: faults on the response of the current request ----
    let respAction; // of the current request
    let respHeader; // bytes of the current response head so far (undefined: in the body)
    let respBody = 0;
    let respGone = false; // reset or cut: nothing more is relayed
    let respHeld; // stallResponse: chunks kept until release()
    let endAfterRelease = false;

    const toClient = (data, then) => {
      if (data.length === 0 && !then) return;
      down += data.length;
      if (!client.write(data, then ? () => then() : undefined)) upstream?.pause();
    };
    function release() {
      held.delete(release);
      const chunks = respHeld ?? [];
      respHeld = undefined;
      respAction = undefined; // the rest of this response flows
      if (dead) return;
      for (const c of chunks) toClient(c);
      if (endAfterRelease) client.end();
      else upstream?.resume();
    }
    const hold = (rest) => {
      respHeld = [rest];
      upstream?.pause();
      held.add(release);
    };
    const onUpstreamData = (chunk) => {
      if (dead || respGone) return;
      if (respHeld) {
        respHeld.push(chunk);
        return;
      }
      const act = respAction;
      if (!onResponse(act)) {
        toClient(chunk);
        return;
      }
      if (act.afterBodyBytes < 0) {
        // Before any byte of the answer: the request was processed, the client never knows.
        count(act.kind);
        if (act.kind === 'stallResponse') hold(chunk);
        else if (act.kind === 'resetResponse') {
          respGone = true;
          kill(true);
        } else {
          respGone = true;
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
        const fromRest = end + CRLF2.length - respHeader.length;
        toClient(rest.subarray(0, fromRest));
        rest = rest.subarray(fromRest);
        // An interim 100 Continue: the real head follows.
        respHeader = /^HTTP\/1\.[01] 1\d\d/.test(all.subarray(0, 12).toString('latin1')) ? Buffer.alloc(0) : undefined;
      }
      if (act.kind === 'corruptResponse') {
        const i = act.byteIndex - respBody;
        if (i >= 0 && i < rest.length) {
          rest = Buffer.from(rest); // a copy: the chunk may be shared
          rest[i] ^= 0xff;
          count('corruptResponse');
        }
        respBody += rest.length;
        toClient(rest);
        return;
      }
      const room = act.afterBodyBytes - respBody;
      if (rest.length < room) {
        respBody += rest.length;
        toClient(rest);
        return;
      }
      respBody += room;
      count(act.kind);
      if (act.kind === 'stallResponse') {
        toClient(rest.subarray(0, room));
        hold(rest.subarray(room));
        return;
      }
      // Let what was relayed reach the client, then reset (or close cleanly).
      respGone = true;
      upstream?.pause();
      if (act.kind === 'resetResponse') toClient(rest.subarray(0, room), () => kill(true));
      else {
        dead = true;
        down += room;
        client.end(rest.subarray(0, room));
        upstream?.destroy();
      }
    };

    const openUpstream = () => {
      if (upstream) return upstream;
      const socket = net.connect(target.port, target.host);
      upstream = socket;
      sockets.add(socket);
      socket.on('data', onUpstreamData);
      socket.on('end', () => {
        if (respHeld) endAfterRelease = true;
        else if (!respGone) client.end();
      });
      socket.on('error', () => kill(true));
      socket.on('close', () => {
        sockets.delete(socket);
        if (respHeld) endAfterRelease = true;
        else if (!respGone) kill(false);
      });
      // Backpressure from the client to the upstream.
      client.on('drain', () => {
        if (!respGone && !respHeld) socket.resume();
      });
      return socket;
    };
    const toUpstream = (data) => {
      if (data.length === 0 || dead) return;
      const socket = openUpstream();
      if (!socket.write(data) && !upstreamFull) {
        upstreamFull = true;
        client.pause();
        socket.once('drain', () => {
          upstreamFull = false;
          resumeClient();
        });
      }
    };

    // ---- client -> server: request framing ----
    // body: { mode: 'none' } | { mode: 'fixed', left } | { mode: 'chunked', state: 'size' | 'data' | 'data-crlf' | 'trailer', left, line }
    let phase = 'head';
    let headBuf = Buffer.alloc(0);
    let body = { mode: 'none' };
    let action; // for the current request
    let method = '';
    let bodySeen = 0; // body bytes (framing included) of the current request
    const pending = [];

    /** What to do with `data`, a piece of the current request's body (or framing). */
    const bodyBytes = (data) => {
      if (data.length === 0) return;
      const act = action;
      if (keepsHead(act)) {
        bodySeen += data.length; // discarded
        return;
      }
      if (act?.kind === 'resetRequest' || act?.kind === 'stallRequest') {
        const room = act.afterBodyBytes - bodySeen;
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

    const fireRequestFault = (act) => {
      count(act.kind);
      if (act.kind === 'resetRequest') kill(true);
      else {
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
        const id = `proxy-${++requestIds}`;
        const reply =
          action.kind === 'slowDown'
            ? cannedResponse(method, id, keepAlive, 503, 'Slow Down', s3ErrorXml('SlowDown', 'Please reduce your request rate.', id), 'application/xml')
            : cannedResponse(method, id, keepAlive, action.status, action.reason ?? 'Error', action.body ?? '', action.contentType ?? 'application/xml');
        if (keepAlive) client.write(reply);
        else {
          client.end(reply);
          dead = true;
        }
      } else if (action?.kind === 'stallRequest' && action.afterBodyBytes === undefined) {
        count('stallRequest');
        // Read on (and discard) whatever the client sends, never answer.
        phase = 'body';
        body = { mode: 'fixed', left: Number.POSITIVE_INFINITY };
        return;
      }
      phase = 'head';
      body = { mode: 'none' };
    };

    const startRequest = (head) => {
      method = head.method;
      bodySeen = 0;
      const te = head.headers['transfer-encoding']?.toLowerCase() ?? '';
      const cl = head.headers['content-length'];
      if (te.includes('chunked')) body = { mode: 'chunked', state: 'size', left: 0, line: Buffer.alloc(0) };
      else if (cl !== undefined && Number(cl) > 0) body = { mode: 'fixed', left: Number(cl) };
      else body = { mode: 'none' };
      action = pickRule(head);
      requests.push({
        connection,
        method: head.method,
        url: head.url,
        headers: head.headers,
        contentLength: cl === undefined ? undefined : Number(cl),
        action: action?.kind ?? 'forward',
        at: Date.now(),
      });
      // The response that follows belongs to this request (HTTP/1.1 clients here do not pipeline).
      respAction = action;
      respHeader = Buffer.alloc(0);
      respBody = 0;
      const go = () => {
        if (!keepsHead(action)) toUpstream(head.raw);
        if ((action?.kind === 'slowDown' || action?.kind === 'respond') && /100-continue/i.test(head.headers.expect ?? '')) {
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
          resumeClient();
        }, action.ms);
        return;
      }
      go();
    };

    /** One line of a chunked body ('size' or 'trailer' state); returns the data after it. */
    const chunkedLine = (b, data) => {
      const all = Buffer.concat([b.line, data]);
      const end = all.indexOf(CRLF);
      if (end < 0) {
        b.line = all;
        bodyBytes(data);
        return Buffer.alloc(0);
      }
      const fromData = end + CRLF.length - b.line.length;
      bodyBytes(data.subarray(0, fromData));
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
      return data.subarray(fromData);
    };

    const pump = () => {
      while (pending.length && !suspended && !dead && !reqStalled) {
        let data = pending.shift();
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
            if (b.state === 'data' || b.state === 'data-crlf') {
              const take = Math.min(b.left, data.length);
              bodyBytes(data.subarray(0, take));
              b.left -= take;
              data = data.subarray(take);
              if (b.left === 0 && b.state === 'data') {
                b.state = 'data-crlf';
                b.left = 2;
              } else if (b.left === 0) b.state = 'size';
              continue;
            }
            data = chunkedLine(b, data);
          }
          if (data.length) pending.unshift(data);
          continue;
        }
        // A body without framing should not happen; pass it on.
        toUpstream(data);
      }
    };

    client.on('data', (chunk) => {
      up += chunk.length;
      pending.push(chunk);
      pump();
      const ms = throttleMs(chunk.length);
      if (ms > 0 && !dead) {
        throttled = true;
        client.pause();
        setTimeout(() => {
          throttled = false;
          resumeClient();
        }, ms);
      }
    });
    client.on('end', () => {
      if (upstream && !dead) upstream.end();
      else if (!upstream) client.end();
    });
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();

  const add = (action, times = Number.POSITIVE_INFINITY, match) => {
    const rule = { action, times, match };
    rules.push(rule);
    return rule;
  };
  const clearRules = () => {
    rules.splice(0);
    refuseLeft = 0;
  };
  const clearLog = () => {
    requests.splice(0);
    refused = 0;
    for (const k of Object.keys(faultCounts)) delete faultCounts[k];
  };
  let closing;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    requests,
    ops: (key) => requests.filter((r) => key === undefined || isFor(r, key)).map(s3Op),
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
    corruptResponse: (byteIndex, times, match) => void add({ kind: 'corruptResponse', byteIndex }, times, match),
    delay: (ms, times, match) => void add({ kind: 'delay', ms }, times, match),
    refuseConnections: (times = Number.POSITIVE_INFINITY) => {
      refuseLeft = times;
    },
    throttleUpload: (bytesPerSecond) => {
      rate = bytesPerSecond || undefined;
      allowance = rate ?? 0;
      lastRefill = Date.now();
    },
    release: () => {
      for (const r of [...held]) r();
    },
    clearRules,
    clearLog,
    reset: () => {
      clearRules();
      clearLog();
    },
    totalConnections: () => total,
    openConnections: () => clients.size,
    refused: () => refused,
    faults: () => ({ ...faultCounts }),
    bytesUp: () => up,
    bytesDown: () => down,
    dropAll: () => {
      for (const s of sockets) s.destroy();
    },
    close: () =>
      (closing ??= new Promise((resolve) => {
        rules.splice(0);
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      })),
  };
}
