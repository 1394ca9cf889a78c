// Signed raw HTTP requests for helper tests (no dependency on the library under test).
import http from 'node:http';
import { hashPayload, signHeaders } from '../../scripts/s3-server.mjs';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  reusedSocket: boolean;
}

export interface SignedRequest {
  method: string;
  /** e.g. http://127.0.0.1:PORT/bucket/key or http://bucket.localhost:PORT/key */
  url: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  creds: { accessKeyId: string; secretAccessKey: string; region?: string };
  agent?: http.Agent;
}

/** Send a SigV4-signed request (payload hash signed when there is a body) and buffer the answer. */
export function signedRequest({ method, url, body, headers = {}, creds, agent }: SignedRequest): Promise<RawResponse> {
  const signed = signHeaders({
    method,
    url,
    headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) },
    payloadHash: body === undefined ? 'UNSIGNED-PAYLOAD' : hashPayload(body),
    ...creds,
  });
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: signed, agent: agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), reusedSocket: req.reusedSocket }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
