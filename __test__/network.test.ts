// Proxy and TLS: HTTP(S)_PROXY / NO_PROXY and the `proxy` option, through a real forward
// proxy (CONNECT tunnels and absolute-form requests, counted), and https:// endpoints whose
// certificate a private CA signed (`tls.ca`), with a TLS front in front of the test server.
// Everything listens on 127.0.0.1.
//
// The proxy variables are read when a backend is built (from this thread's process.env), so
// each backend is built inside withEnv(), which sets exactly the given proxy variables and
// restores the environment afterwards; the requests run after that, on purpose.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigurationError, S3StorageBackend, StorageError } from '../lib/index.mjs';
import type { RequestEvent, S3BackendOptions } from '../index';
import { startForwardProxy, startTlsFront, TLS_FIXTURES, type ForwardProxy, type TlsFront } from './helpers/network.mjs';
import { freePort, startTestServer, type TestServer } from './helpers/servers';
import { localhostResolves, testServer, uniqueKey } from './helpers/s3';
import { readAll } from './helpers/streams';

const server = testServer();
const OCTET = 'application/octet-stream';
const FAST = { retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 }, timeouts: { connectMs: 2000, requestMs: 10_000 } };

const PROXY_VAR = /^(https?|all|no)_proxy$/i;

/** Runs `fn` with exactly these proxy variables in process.env, then restores it. */
function withEnv<T>(vars: Record<string, string>, fn: () => T): T {
  const saved = Object.entries(process.env).filter(([k]) => PROXY_VAR.test(k) || k === 'REQUEST_METHOD');
  const clear = () => {
    for (const k of Object.keys(process.env)) if (PROXY_VAR.test(k) || k === 'REQUEST_METHOD') delete process.env[k];
  };
  clear();
  Object.assign(process.env, vars);
  try {
    return fn();
  } finally {
    clear();
    for (const [k, v] of saved) process.env[k] = v;
  }
}

type Coords = Pick<TestServer, 'bucket' | 'region' | 'accessKeyId' | 'secretAccessKey'>;

/** A backend built with exactly these proxy variables set (`on`: the server whose bucket and keys it uses). */
function backendOn(endpoint: string, env: Record<string, string>, extra: Partial<S3BackendOptions> = {}, on: Coords = server): S3StorageBackend {
  return withEnv(
    env,
    () =>
      new S3StorageBackend({
        bucket: on.bucket,
        region: on.region,
        endpoint,
        credentials: { accessKeyId: on.accessKeyId, secretAccessKey: on.secretAccessKey },
        ...FAST,
        ...extra,
      }),
  );
}

const backend = (endpoint: string, env: Record<string, string>, extra: Partial<S3BackendOptions> = {}) => backendOn(endpoint, env, extra);

/** Upload, exists, download and delete of a fresh key: the round trip every case makes. */
async function roundTrip(b: S3StorageBackend) {
  const key = uniqueKey('network');
  const body = Buffer.from(`hello ${key}`);
  await b.upload({ key, body, contentType: OCTET });
  expect(await b.exists(key)).toBe(true);
  expect((await readAll(await b.download(key))).equals(body)).toBe(true);
  await b.delete(key);
}

async function rejection(p: Promise<unknown>): Promise<StorageError> {
  try {
    await p;
  } catch (err) {
    return err as StorageError;
  }
  throw new Error('expected a rejection');
}

function configIssues(fn: () => unknown): { field: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigurationError);
    return (err as ConfigurationError).details?.issues ?? [];
  }
  throw new Error('expected a ConfigurationError');
}

const s3 = `127.0.0.1:${server.port}`;
/** Direct virtual-hosted requests need <bucket>.localhost to resolve here; skipped (visibly) where it does not. */
const vhost = await localhostResolves(`${server.bucket}.localhost`);

describe('HTTP proxy from the environment (http:// endpoint)', () => {
  let proxy: ForwardProxy;
  beforeAll(async () => {
    proxy = await startForwardProxy();
  });
  afterAll(() => proxy?.close());

  it.each(['HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy'])('%s: every request goes through the proxy as a forwarded request, and succeeds', async (name) => {
    proxy.clear();
    const b = backend(server.endpoint, { [name]: proxy.url });
    await roundTrip(b);
    expect(proxy.forwarded.length).toBeGreaterThanOrEqual(4);
    expect(new Set(proxy.forwarded.map((r) => r.target))).toEqual(new Set([s3]));
    expect(proxy.tunnels).toEqual([]);
  });

  it('HTTPS_PROXY alone does not apply to an http:// endpoint', async () => {
    proxy.clear();
    await roundTrip(backend(server.endpoint, { HTTPS_PROXY: proxy.url }));
    expect(proxy.count()).toBe(0);
  });

  it.each([
    ['127.0.0.1', true],
    ['localhost', false], // names are not resolved: localhost is not 127.0.0.1
    ['*', true],
    [`127.0.0.1:${server.port}`, true],
    [`127.0.0.1:${server.port + 1}`, false],
    ['127.0.0.0/8', true],
    ['10.0.0.0/8', false],
    ['example.com, 127.0.0.1', true],
    ['example.com', false],
  ])('NO_PROXY=%s: bypasses the proxy = %s', async (noProxy, bypass) => {
    proxy.clear();
    const b = backend(server.endpoint, { HTTP_PROXY: proxy.url, NO_PROXY: noProxy });
    expect(await b.exists(uniqueKey('no-proxy'))).toBe(false);
    if (bypass) expect(proxy.count()).toBe(0);
    else expect(proxy.forwarded.length).toBeGreaterThan(0);
    expect(b.describe().proxy?.url).toBe(bypass ? undefined : proxy.url);
  });

  it('no_proxy (lower case) wins over NO_PROXY, as curl reads them', async () => {
    proxy.clear();
    const b = backend(server.endpoint, { HTTP_PROXY: proxy.url, NO_PROXY: 'example.com', no_proxy: '127.0.0.1' });
    expect(await b.exists(uniqueKey('no-proxy'))).toBe(false);
    expect(proxy.count()).toBe(0);
  });

  it('the variables are read when the backend is built, not per request', async () => {
    proxy.clear();
    const before = backend(server.endpoint, {});
    const during = backend(server.endpoint, { HTTP_PROXY: proxy.url });
    // withEnv restored the environment: HTTP_PROXY is unset again now.
    expect(process.env.HTTP_PROXY).toBeUndefined();
    await roundTrip(during);
    const viaProxy = proxy.count();
    expect(viaProxy).toBeGreaterThan(0);
    // Set while `before` makes its requests: it does not look.
    const saved = process.env.HTTP_PROXY;
    process.env.HTTP_PROXY = proxy.url;
    try {
      await roundTrip(before);
    } finally {
      if (saved === undefined) delete process.env.HTTP_PROXY;
      else process.env.HTTP_PROXY = saved;
    }
    expect(proxy.count()).toBe(viaProxy);
  });

  it('a proxy that is down fails the request typed "unavailable" (requests really go to it)', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const err = await rejection(backend(server.endpoint, { HTTP_PROXY: dead }).exists(uniqueKey('dead-proxy')));
    expect(err).toBeInstanceOf(StorageError);
    expect(err.details?.reason).toBe('unavailable');
  });

  it('the proxy option: a URL is used for every request and the environment is not read', async () => {
    proxy.clear();
    const dead = `http://127.0.0.1:${await freePort()}`;
    const b = backend(server.endpoint, { HTTP_PROXY: dead, NO_PROXY: '*' }, { proxy: proxy.url });
    await roundTrip(b);
    expect(proxy.forwarded.length).toBeGreaterThanOrEqual(4);
    expect(b.describe().proxy).toEqual({ url: proxy.url, from: 'proxy' });
  });

  it('the proxy option false: no proxy, whatever the environment says', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const b = backend(server.endpoint, { HTTP_PROXY: dead }, { proxy: false });
    await roundTrip(b);
    expect(b.describe().proxy).toBeUndefined();
  });

  it('describe() shows the proxy in force, where it was set and NO_PROXY', () => {
    const b = backend(server.endpoint, { http_proxy: proxy.url, NO_PROXY: 'example.com' });
    expect(b.describe().proxy).toEqual({ url: proxy.url, from: 'http_proxy', noProxy: 'example.com' });
  });

  it('virtual-hosted requests (<bucket>.localhost) are matched against NO_PROXY per request', async () => {
    proxy.clear();
    const endpoint = `http://localhost:${server.port}`;
    const b = backend(endpoint, { HTTP_PROXY: proxy.url, NO_PROXY: 'example.com' }, { forcePathStyle: false });
    await roundTrip(b);
    expect(new Set(proxy.forwarded.map((r) => r.target))).toEqual(new Set([`${server.bucket}.localhost:${server.port}`]));
  });

  it.skipIf(!vhost)(
    'virtual-hosted requests to a subdomain of a NO_PROXY name go direct',
    async () => {
      proxy.clear();
      const b = backend(`http://localhost:${server.port}`, { HTTP_PROXY: proxy.url, NO_PROXY: 'localhost' }, { forcePathStyle: false });
      await roundTrip(b);
      expect(proxy.count()).toBe(0);
    },
  );
});

describe('proxy with Basic auth', () => {
  let proxy: ForwardProxy;
  let front: TlsFront;
  const user = 'proxy-user';
  const pass = 'p@ss:word';
  const inUrl = (url: string) => url.replace('http://', `http://${user}:${encodeURIComponent(pass)}@`);
  const basic = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  beforeAll(async () => {
    proxy = await startForwardProxy({ auth: `${user}:${pass}` });
    front = await startTlsFront({ host: '127.0.0.1', port: server.port });
  });
  afterAll(async () => {
    await proxy?.close();
    await front?.close();
  });

  it('credentials in HTTP_PROXY authenticate every forwarded request, and never show', async () => {
    proxy.clear();
    const b = backend(server.endpoint, { HTTP_PROXY: inUrl(proxy.url) });
    await roundTrip(b);
    expect(proxy.denied).toEqual([]);
    expect(proxy.forwarded.every((r) => r.proxyAuthorization === basic)).toBe(true);
    const shown = JSON.stringify(b.describe());
    expect(shown).toContain(proxy.url);
    expect(shown).not.toContain(user);
    expect(shown).not.toContain(encodeURIComponent(pass));
  });

  it('credentials in HTTPS_PROXY authenticate the CONNECT tunnel', async () => {
    proxy.clear();
    const b = backend(`https://127.0.0.1:${front.port}`, { HTTPS_PROXY: inUrl(proxy.url) }, { tls: { ca: TLS_FIXTURES.ca } });
    await roundTrip(b);
    expect(proxy.tunnels.length).toBeGreaterThan(0);
    expect(proxy.tunnels.every((t) => t.proxyAuthorization === basic)).toBe(true);
  });

  it('without credentials the proxy refuses (407) and the request fails typed', async () => {
    proxy.clear();
    const err = await rejection(backend(server.endpoint, { HTTP_PROXY: proxy.url }).exists(uniqueKey('no-auth')));
    expect(err).toBeInstanceOf(StorageError);
    expect(proxy.denied.length).toBeGreaterThan(0);
    expect(err.details?.status).toBe(407);
  });
});

describe('bad proxy settings are configuration errors', () => {
  it('a SOCKS proxy variable names the variable, and does not repeat its password', () => {
    const issues = configIssues(() => backend(server.endpoint, { ALL_PROXY: 'socks5://user:hunter2@127.0.0.1:1080' }));
    expect(issues.map((i) => i.field)).toEqual(['ALL_PROXY']);
    expect(issues[0].message).toMatch(/SOCKS/);
    expect(issues[0].message).toMatch(/NO_PROXY|proxy: false/);
    expect(JSON.stringify(issues)).not.toContain('hunter2');
  });

  it.each([
    [true, /proxy URL/],
    ['ftp://127.0.0.1:21', /http:\/\/ or https:\/\//],
    ['http://user:hunter2@', /host|URL/],
  ])('proxy: %s is refused, naming the option', (value, message) => {
    const issues = configIssues(() => backend(server.endpoint, {}, { proxy: value as string }));
    expect(issues.map((i) => i.field)).toEqual(['proxy']);
    expect(issues[0].message).toMatch(message);
    expect(JSON.stringify(issues)).not.toContain('hunter2');
  });
});

// Its own server, without a virtual-hosted domain: the shared one's (localhost:<its port>)
// would take Host "localhost:<the front's port>" for a bucket name.
describe('https:// endpoint whose certificate a private CA signed', () => {
  let own: TestServer;
  let front: TlsFront;
  let proxy: ForwardProxy;
  let https: string;
  const backend = (endpoint: string, env: Record<string, string>, extra: Partial<S3BackendOptions> = {}) => backendOn(endpoint, env, extra, own);
  beforeAll(async () => {
    own = await startTestServer();
    front = await startTlsFront({ host: '127.0.0.1', port: own.port });
    proxy = await startForwardProxy();
    https = `https://127.0.0.1:${front.port}`;
  });
  afterAll(async () => {
    await front?.close();
    await proxy?.close();
    await own?.stop();
  });

  it('without tls.ca the request fails typed, at once (not retried), and the message says the certificate is not trusted and what to do', async () => {
    const failed = front.failedHandshakes();
    const attempts: RequestEvent[] = [];
    const err = await rejection(backend(https, {}, { onRequest: (e) => attempts.push(e) }).exists(uniqueKey('untrusted')));
    expect(err).toBeInstanceOf(StorageError);
    expect(err.details?.reason).toBe('unavailable');
    expect(err.details?.operation).toBe('exists');
    expect(err.message).toMatch(/TLS certificate is not trusted/);
    expect(err.message).toMatch(/UnknownIssuer/);
    expect(err.message).toMatch(/tls\.ca/);
    // maxAttempts is 2 (FAST): a rejected certificate is not retried.
    expect(front.failedHandshakes()).toBe(failed + 1);
    await expect.poll(() => attempts.length).toBe(1);
    expect(attempts[0]).toMatchObject({ attempt: 1, error: expect.stringMatching(/UnknownIssuer/) });
    expect(attempts[0].status).toBeUndefined();
  });

  it.each([
    ['a string', () => TLS_FIXTURES.ca, '127.0.0.1'],
    ['a Buffer', () => Buffer.from(TLS_FIXTURES.ca), '127.0.0.1'],
    ['an array with an unrelated CA first', () => [TLS_FIXTURES.otherCa, Buffer.from(TLS_FIXTURES.ca)], '127.0.0.1'],
    ['a string, endpoint named localhost', () => TLS_FIXTURES.ca, 'localhost'],
  ])('tls.ca as %s: upload, exists, download and delete work over TLS', async (_what, ca, host) => {
    const before = front.handshakes();
    const b = backend(`https://${host}:${front.port}`, {}, { tls: { ca: ca() as string } });
    await roundTrip(b);
    expect(front.handshakes()).toBeGreaterThan(before);
    expect(b.describe().tls).toEqual({ caCertificates: Array.isArray(ca()) ? 2 : 1 });
  });

  it('tls.ca replaces the system roots, as Node`s ca option does: a CA that did not sign the certificate is not trusted', async () => {
    const err = await rejection(backend(https, {}, { tls: { ca: TLS_FIXTURES.otherCa } }).exists(uniqueKey('other-ca')));
    expect(err.details?.reason).toBe('unavailable');
    expect(err.message).toMatch(/TLS certificate is not trusted/);
  });

  it.each([
    ['text that is not PEM', 'not a certificate', /no certificate/],
    ['a private key only', TLS_FIXTURES.key, /no certificate/],
    ['a certificate block of garbage', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', /cannot be trusted as a CA|not valid PEM/],
    ['a truncated PEM block', TLS_FIXTURES.ca.slice(0, 100), /not valid PEM|no certificate/],
    ['a number', 42, /PEM text/],
  ])('tls.ca with %s is a ConfigurationError naming tls.ca', (_what, ca, message) => {
    const issues = configIssues(() => backend(https, {}, { tls: { ca: ca as string } }));
    expect(issues.map((i) => i.field)).toEqual(['tls.ca']);
    expect(issues[0].message).toMatch(message);
  });

  it('an unknown tls option is named', () => {
    const issues = configIssues(() => backend(https, {}, { tls: { ca: TLS_FIXTURES.ca, rejectUnauthorized: false } as never }));
    expect(issues.map((i) => i.field)).toEqual(['tls.rejectUnauthorized']);
  });

  it('through the CONNECT proxy (HTTPS_PROXY): a tunnel to the endpoint, TLS inside it, and success', async () => {
    proxy.clear();
    const b = backend(https, { HTTPS_PROXY: proxy.url, HTTP_PROXY: 'http://127.0.0.1:9' }, { tls: { ca: TLS_FIXTURES.ca } });
    await roundTrip(b);
    expect(proxy.tunnels.length).toBeGreaterThan(0);
    expect(new Set(proxy.tunnels.map((t) => t.target))).toEqual(new Set([`127.0.0.1:${front.port}`]));
    expect(proxy.forwarded).toEqual([]);
    expect(b.describe().proxy).toEqual({ url: proxy.url, from: 'HTTPS_PROXY' });
  });

  it('through the CONNECT proxy without tls.ca: the tunnel opens, the certificate is still checked', async () => {
    proxy.clear();
    const err = await rejection(backend(https, { HTTPS_PROXY: proxy.url }).exists(uniqueKey('tunnel-untrusted')));
    expect(proxy.tunnels.length).toBeGreaterThan(0);
    expect(err.message).toMatch(/TLS certificate is not trusted/);
  });

  it('an https:// proxy (TLS to the proxy itself, trusted through tls.ca): http:// and https:// endpoints through it', async () => {
    const tlsProxy = await startTlsFront({ host: '127.0.0.1', port: proxy.port });
    try {
      proxy.clear();
      const viaTls = `https://localhost:${tlsProxy.port}`;
      await roundTrip(backend(`http://127.0.0.1:${own.port}`, { HTTP_PROXY: viaTls }, { tls: { ca: TLS_FIXTURES.ca } }));
      expect(proxy.forwarded.length).toBeGreaterThanOrEqual(4);
      await roundTrip(backend(https, { HTTPS_PROXY: viaTls }, { tls: { ca: TLS_FIXTURES.ca } }));
      expect(proxy.tunnels.length).toBeGreaterThan(0);
      expect(tlsProxy.handshakes()).toBeGreaterThanOrEqual(2);
    } finally {
      await tlsProxy.close();
    }
  });

  it('NO_PROXY exempts the https:// endpoint: no tunnel', async () => {
    proxy.clear();
    const b = backend(https, { HTTPS_PROXY: proxy.url, NO_PROXY: `127.0.0.1:${front.port}` }, { tls: { ca: TLS_FIXTURES.ca } });
    await roundTrip(b);
    expect(proxy.count()).toBe(0);
  });
});
