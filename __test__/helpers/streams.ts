// Byte sources, hashing and memory sampling for upload/download tests.
import { createHash, randomFillSync } from 'node:crypto';
import { Readable } from 'node:stream';

export const KiB = 1024;
export const MiB = 1024 * 1024;

export const sha256 = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex');
export const md5 = (data: Uint8Array | string): string => createHash('md5').update(data).digest('hex');

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Random bytes (not held anywhere else). */
export function randomBuffer(size: number): Buffer {
  return randomFillSync(Buffer.allocUnsafe(size));
}

export interface GeneratedSource {
  stream: Readable;
  /** Bytes handed to the stream so far. */
  generated(): number;
  /** SHA-256 (hex) of everything generated; complete once the stream ended. */
  sha256(): string;
  /** The multipart ETag S3 computes for these bytes cut into parts of `partSize`. */
  multipartEtag(): string;
}

export interface GenerateOptions {
  minChunk?: number;
  maxChunk?: number;
  /** Compute per-part MD5s for `multipartEtag()`. */
  partSize?: number;
  /** Called before each chunk is produced (e.g. to fail or to wait). */
  onChunk?: (generated: number) => void;
  /** Cheap bytes (a fill pattern) and no hashing: a source as fast as memory allows. */
  fast?: boolean;
}

/**
 * A Readable of `total` random bytes, made lazily in fresh Buffers of minChunk..maxChunk
 * bytes, only when the consumer asks (nothing is kept after it was pushed).
 */
export function generatedSource(total: number, options: GenerateOptions = {}): GeneratedSource {
  const { minChunk = 64 * KiB, maxChunk = MiB, partSize, onChunk, fast = false } = options;
  const hash = createHash('sha256');
  const partMd5s: Buffer[] = [];
  let part = partSize ? createHash('md5') : undefined;
  let inPart = 0;
  let made = 0;
  let n = 0;
  let digest: string | undefined;
  const stream = new Readable({
    read() {
      if (made >= total) {
        this.push(null);
        return;
      }
      onChunk?.(made);
      // deterministic spread of sizes between minChunk and maxChunk
      n = (n * 1103515245 + 12345) % 2147483648;
      const size = Math.min(total - made, minChunk + (n % (maxChunk - minChunk + 1)));
      if (fast) {
        made += size;
        this.push(Buffer.allocUnsafe(size).fill(n & 0xff));
        return;
      }
      const chunk = randomFillSync(Buffer.allocUnsafe(size));
      hash.update(chunk);
      if (part && partSize) {
        let off = 0;
        while (off < chunk.length) {
          const take = Math.min(partSize - inPart, chunk.length - off);
          part.update(chunk.subarray(off, off + take));
          inPart += take;
          off += take;
          if (inPart === partSize) {
            partMd5s.push(part.digest());
            part = createHash('md5');
            inPart = 0;
          }
        }
      }
      made += size;
      this.push(chunk);
    },
  });
  return {
    stream,
    generated: () => made,
    sha256: () => {
      if (fast) throw new Error('generatedSource: no hash in fast mode');
      return (digest ??= hash.digest('hex'));
    },
    multipartEtag: () => {
      const md5s = inPart > 0 && part ? [...partMd5s, part.digest()] : partMd5s;
      return `"${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${md5s.length}"`;
    },
  };
}

/** A byte stream of the given chunks (not object mode). */
export function streamOf(chunks: (Buffer | Uint8Array | string)[]): Readable {
  const queue = [...chunks];
  return new Readable({
    read() {
      this.push(queue.length ? queue.shift()! : null);
    },
  });
}

/** `before` random bytes in `chunk`-sized pieces, then the stream fails with `error`. */
export function failingSource(before: number, error: Error, chunk = 256 * KiB): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= before) {
        setImmediate(() => this.destroy(error));
        return;
      }
      const size = Math.min(chunk, before - sent);
      sent += size;
      this.push(randomBuffer(size));
    },
  });
}

/** Reads a stream to its end: byte count and SHA-256. */
export async function hashStream(stream: AsyncIterable<unknown>): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    const buf = chunk as Buffer;
    hash.update(buf);
    bytes += buf.length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** Reads a stream to its end or its error: the bytes received, and the error (undefined when it ended). */
export async function drain(stream: AsyncIterable<unknown>): Promise<{ received: number; caught: unknown }> {
  let received = 0;
  try {
    for await (const chunk of stream) received += (chunk as Buffer).length;
  } catch (caught) {
    return { received, caught };
  }
  return { received, caught: undefined };
}

/** Reads a stream into one Buffer (small objects only). */
export async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Samples RSS every `intervalMs`; `stop()` gives the largest rise over the level at start. */
export function sampleRss(intervalMs = 50): { stop(): number; maxRise(): number } {
  const base = process.memoryUsage.rss();
  let max = base;
  const timer = setInterval(() => {
    max = Math.max(max, process.memoryUsage.rss());
  }, intervalMs);
  return {
    maxRise: () => max - base,
    stop: () => {
      clearInterval(timer);
      max = Math.max(max, process.memoryUsage.rss());
      return max - base;
    },
  };
}
