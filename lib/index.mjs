// ESM entry: the same objects as the CommonJS entry (one native module instance).
import cjs from './index.cjs'

export const { S3StorageBackend, createS3Backend, generateStorageKey, StorageError, FileNotFoundError, ConfigurationError } = cjs
export default cjs
