// ESM entry: the same objects as the CommonJS entry (one native module instance).
// Loaded with require() rather than `import ... from './index.cjs'`: Node's ESM
// translator lexes and compiles CommonJS modules more slowly (~15 ms more cold start).
import { createRequire } from 'node:module'

const cjs = createRequire(import.meta.url)('./index.cjs')

export const { S3StorageBackend, createS3Backend, generateStorageKey, StorageError, FileNotFoundError, ConfigurationError } = cjs
export default cjs
