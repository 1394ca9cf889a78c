// Starts one S3 server for the whole test run (the kind S3_TEST_SERVER names, default s3s-fs;
// `builtin` runs the package's startLocalS3 in this process; or uses S3_TEST_ENDPOINT) and hands its coordinates to test files through provide/inject.
import type { TestProject } from 'vitest/node';
import { selectedServerKind, startTestServer } from './servers';
import type { S3TestConfig } from './vitest';

function fromEnv(endpoint: string): S3TestConfig {
  const need = (name: string) => {
    const value = process.env[name];
    if (!value) throw new Error(`S3_TEST_ENDPOINT is set, so ${name} must be set too`);
    return value;
  };
  const url = new URL(endpoint);
  return {
    server: 'external',
    endpoint,
    region: process.env.S3_TEST_REGION ?? 'us-east-1',
    bucket: need('S3_TEST_BUCKET'),
    accessKeyId: need('S3_TEST_ACCESS_KEY_ID'),
    secretAccessKey: need('S3_TEST_SECRET_ACCESS_KEY'),
    dataDir: undefined,
    port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
    domain: undefined,
  };
}

export default async function setup({ provide }: Pick<TestProject, 'provide'>) {
  const external = process.env.S3_TEST_ENDPOINT;
  if (external) {
    provide('s3', fromEnv(external));
    return;
  }
  const kind = selectedServerKind();
  if (kind === 'builtin') {
    // The package's own server, in this process: what docs/testing.md shows hosts.
    const { startLocalS3 } = await import('../../testing/index.mjs');
    const local = await startLocalS3({ domain: 'localhost' });
    const { endpoint, region, bucket, credentials, dir: dataDir } = local;
    const port = Number(new URL(endpoint).port);
    provide('s3', { server: kind, endpoint, region, bucket, ...credentials, dataDir, port, domain: 'localhost' });
    return () => local.stop();
  }
  // `localhost` so clients can also use http://<bucket>.localhost:<port> (virtual-hosted style).
  const server = await startTestServer({ kind, domain: 'localhost' });
  const { endpoint, region, bucket, accessKeyId, secretAccessKey, dataDir, port, domain } = server;
  provide('s3', { server: kind, endpoint, region, bucket, accessKeyId, secretAccessKey, dataDir, port, domain });
  return () => server.stop();
}
