// Minimal AWS SigV4 header signing for raw HTTP requests in tests (helpers that must not
// depend on the library under test). Paths must already be URI-encoded.
import { createHash, createHmac } from 'node:crypto';

export interface SignInput {
  method: string;
  /** Full URL as the server will see it: its host:port is signed as the Host header. */
  url: string;
  headers?: Record<string, string | number>;
  accessKeyId: string;
  secretAccessKey: string;
  region?: string;
  /** Hex SHA-256 of the body, or UNSIGNED-PAYLOAD. */
  payloadHash?: string;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
// RFC 3986 encoding, as SigV4 wants for query strings.
const encode = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function hashPayload(body: string | Buffer): string {
  return sha256(body);
}

/** Headers to send (lowercase names), including host, x-amz-date, x-amz-content-sha256, authorization. */
export function signHeaders(input: SignInput): Record<string, string> {
  const { method, url, accessKeyId, secretAccessKey, region = 'us-east-1', payloadHash = 'UNSIGNED-PAYLOAD' } = input;
  const u = new URL(url);
  const amzDate = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
  const day = amzDate.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.headers ?? {})) headers[k.toLowerCase()] = String(v);
  Object.assign(headers, { host: u.host, 'x-amz-date': amzDate, 'x-amz-content-sha256': payloadHash });

  const names = Object.keys(headers).sort();
  const query = [...u.searchParams]
    .map(([k, v]) => [encode(k), encode(v)])
    .sort(([k1, v1], [k2, v2]) => (k1 === k2 ? cmp(v1, v2) : cmp(k1, k2))) // by key, then value
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalRequest = [
    method,
    u.pathname,
    query,
    names.map((n) => `${n}:${headers[n].trim()}\n`).join(''),
    names.join(';'),
    payloadHash,
  ].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, day), region), 's3'), 'aws4_request');
  const signature = createHmac('sha256', key).update(stringToSign).digest('hex');
  headers.authorization =
    `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
  return headers;
}
