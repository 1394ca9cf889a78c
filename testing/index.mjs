// ESM entry of `@raptscallions/storage-s3-native/testing`: the same function as the CommonJS entry.
import { createRequire } from 'node:module'

const cjs = createRequire(import.meta.url)('./index.cjs')

export const { startLocalS3 } = cjs
export default cjs
