// Types for network.mjs: a forward (CONNECT) proxy and a TLS front for the test S3 server.

/** PEM text of the test CA, the server's certificate and key (fixtures/tls), and an unrelated CA. */
export declare const TLS_FIXTURES: { ca: string; otherCa: string; cert: string; key: string };

export interface ProxiedRequest {
  /** CONNECT: `host:port` as asked; forwarded: the target URL's `host[:port]`. */
  target: string;
  /** Forwarded requests only. */
  method?: string;
  /** The Proxy-Authorization header sent, if any. */
  proxyAuthorization?: string;
}

export interface ForwardProxy {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  /** CONNECT tunnels opened (https:// requests). */
  tunnels: ProxiedRequest[];
  /** Absolute-form requests forwarded (http:// requests). */
  forwarded: ProxiedRequest[];
  /** Requests refused with 407 (wrong or missing Basic auth). */
  denied: ProxiedRequest[];
  /** Tunnels plus forwarded requests. */
  count(): number;
  clear(): void;
  close(): Promise<void>;
}

/** A forward proxy on a free 127.0.0.1 port; with `auth` ('user:pass') it answers 407 without that Basic auth. */
export declare function startForwardProxy(opts?: { auth?: string }): Promise<ForwardProxy>;

export interface TlsFront {
  port: number;
  /** TLS connections accepted (handshake done). */
  handshakes(): number;
  /** Handshakes that failed (e.g. the client did not trust the certificate). */
  failedHandshakes(): number;
  close(): Promise<void>;
}

/** A TLS endpoint (the fixtures' certificate for localhost and 127.0.0.1) relaying to `target`. */
export declare function startTlsFront(target: { host: string; port: number }): Promise<TlsFront>;
