// Types for stalling-proxy.mjs.

export interface StallingProxy {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** Client connections currently open. */
  openConnections(): number;
  /** Connections that reached the limit (held from then on). */
  stalled(): number;
  close(): Promise<void>;
}

/**
 * Relays to `target`; per connection, stops passing bytes on after `limit` bytes in one
 * direction: 'response' (default) holds the server's answer, 'request' stops reading the
 * client's request (its body backs up).
 */
export declare function startStallingProxy(
  target: { host: string; port: number },
  limit: number,
  direction?: 'response' | 'request',
): Promise<StallingProxy>;
