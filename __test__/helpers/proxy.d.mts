// Types for proxy.mjs: the tests' one proxy (records requests, injects faults, throttles, stalls).

export type ProxyAction =
  | { kind: 'slowDown'; keepAlive?: boolean }
  | { kind: 'respond'; status: number; reason?: string; body?: string; contentType?: string; keepAlive?: boolean }
  | { kind: 'garbage'; bytes: Buffer }
  | { kind: 'resetRequest'; afterBodyBytes: number }
  | { kind: 'resetResponse'; afterBodyBytes: number }
  | { kind: 'cutResponse'; afterBodyBytes: number }
  | { kind: 'stallRequest'; afterBodyBytes?: number }
  | { kind: 'stallResponse'; afterBodyBytes: number }
  | { kind: 'corruptResponse'; byteIndex: number }
  | { kind: 'delay'; ms: number };

export interface RequestMatch {
  /** e.g. 'PUT' or ['GET', 'HEAD']. */
  method?: string | string[];
  /** Tested against the request target (path + query). */
  url?: RegExp;
}

export interface ProxyRule {
  action: ProxyAction;
  /** Requests it applies to, then it is spent. Default: every matching request. */
  times?: number;
  match?: RequestMatch;
}

export interface ProxyRequest {
  /** Index of the client connection it came on (0-based). */
  connection: number;
  method: string;
  /** Path + query exactly as sent. */
  url: string;
  /** Lowercased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** `content-length` of the request, when given. */
  contentLength?: number;
  /** What the proxy did: 'forward' or a fault kind. */
  action: 'forward' | ProxyAction['kind'];
  at: number;
}

export interface TestProxy {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  port: number;
  /** Every request head seen, in order. */
  requests: ProxyRequest[];
  /** The S3 operations (s3Op) of the requests seen, or of those for `key` only. */
  ops(key?: string): string[];
  /** Adds a rule (after the existing ones); returns it, so `times` left can be read. */
  inject(rule: ProxyRule): Required<Pick<ProxyRule, 'times'>> & ProxyRule;
  slowDown(times?: number, opts?: { keepAlive?: boolean; match?: RequestMatch }): void;
  resetRequest(afterBodyBytes: number, times?: number, match?: RequestMatch): void;
  resetResponse(afterBodyBytes: number, times?: number, match?: RequestMatch): void;
  /** Like resetResponse, with a clean close (FIN) instead of a reset. */
  cutResponse(afterBodyBytes: number, times?: number, match?: RequestMatch): void;
  /** Answer with this status and body instead of forwarding (S3 XML error when `code` is given). */
  respond(
    status: number,
    opts?: { code?: string; message?: string; body?: string; contentType?: string; reason?: string; keepAlive?: boolean; times?: number; match?: RequestMatch },
  ): void;
  /** Answer with these bytes (not HTTP) and close. */
  garbage(bytes: Buffer, times?: number, match?: RequestMatch): void;
  stallRequest(afterBodyBytes?: number, times?: number, match?: RequestMatch): void;
  /** Relay `afterBodyBytes` of the response body, then hold the rest until release(). */
  stallResponse(afterBodyBytes: number, times?: number, match?: RequestMatch): void;
  /** Relay the response with its body byte at `byteIndex` (from 0, after the head) changed; counted when it passed. */
  corruptResponse(byteIndex: number, times?: number, match?: RequestMatch): void;
  delay(ms: number, times?: number, match?: RequestMatch): void;
  /** Close the next `times` connections as soon as they are accepted. */
  refuseConnections(times?: number): void;
  /** Relay at most this many client-to-server bytes per second, all connections together (undefined: no limit). */
  throttleUpload(bytesPerSecond: number | undefined): void;
  /** Let the responses held by stallResponse go on. */
  release(): void;
  /** Remove every rule and connection refusal (connections already faulted stay so). */
  clearRules(): void;
  /** Forget the request log and the fault and refusal counts. */
  clearLog(): void;
  /** clearRules() and clearLog(). */
  reset(): void;
  /** Client connections accepted (refused ones included). */
  totalConnections(): number;
  /** Client connections currently open. */
  openConnections(): number;
  /** Connections closed at once by refuseConnections. */
  refused(): number;
  /** Faults applied so far (by kind; a rule counts when its fault actually happened). */
  faults(): Record<string, number>;
  /** Client-to-server bytes received so far (request heads included). */
  bytesUp(): number;
  /** Server-to-client bytes relayed so far (response heads included). */
  bytesDown(): number;
  /** Destroy every open connection (client and upstream sides). */
  dropAll(): void;
  close(): Promise<void>;
}

/** What an S3 request is: create, part, complete, abort, or the method in lower case. */
export declare function s3Op(r: Pick<ProxyRequest, 'method' | 'url'>): string;
/** An S3 XML error body. */
export declare function s3ErrorXml(code: string, message: string, requestId?: string): string;
/**
 * Starts a proxy to `target` on a free 127.0.0.1 port. `target` is read whenever an upstream
 * connection opens, so its port may be set after the start.
 */
export declare function startProxy(target: { host: string; port: number }): Promise<TestProxy>;
