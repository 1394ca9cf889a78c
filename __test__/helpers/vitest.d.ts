// Types for the values that __test__/helpers/global-setup.ts provides to tests.
import 'vitest';

/** Where the shared test S3 server lives (see global-setup.ts). */
export interface S3TestConfig {
  /** Which server this is (S3_TEST_SERVER; `external` for S3_TEST_ENDPOINT), so tests can state differences. */
  server: 'builtin' | 's3s-fs' | 'garage' | 'moto' | 'external';
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The server's directory (s3s-fs: its buckets); undefined for an external server (S3_TEST_ENDPOINT). */
  dataDir?: string;
  port: number;
  /** Base domain for virtual-hosted style (`http://<bucket>.<domain>:<port>`); undefined if unsupported. */
  domain?: string;
}

declare module 'vitest' {
  interface ProvidedContext {
    s3: S3TestConfig;
  }
}
