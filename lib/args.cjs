'use strict'
// The one table of what each method takes, and the checks napi cannot make:
// JavaScript types, and option names (napi drops names it does not know).
// Ranges and every other rule are the core's (core/src/validate.rs); the
// words of every error are the core's too (lib/errors.cjs asks it).
//
// The rule for names, everywhere: an unknown name is an error, and a name
// that belongs in another argument of the same method says where it belongs.

function isAbortSignal(v) {
  return v !== null && typeof v === 'object' && typeof v.aborted === 'boolean' && typeof v.addEventListener === 'function'
}

function isReadableLike(v) {
  return v !== null && typeof v === 'object' && typeof v[Symbol.asyncIterator] === 'function' && !Buffer.isBuffer(v)
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)

/** JS types: [words for the message, check]. */
const TYPES = {
  string: ['a string', (v) => typeof v === 'string'],
  number: ['a number', (v) => typeof v === 'number'],
  boolean: ['a boolean', (v) => typeof v === 'boolean'],
  bytes: ['a Buffer or Uint8Array', (v) => v instanceof Uint8Array],
  function: ['a function', (v) => typeof v === 'function'],
  signal: ['an AbortSignal', isAbortSignal],
  strings: ['an object of strings', (v) => isObject(v) && Object.values(v).every((s) => typeof s === 'string')],
  date: ['a Date or an ISO 8601 string', (v) => v instanceof Date || typeof v === 'string'],
  body: ['a Buffer, Uint8Array, Readable or web ReadableStream', (v) => v instanceof Uint8Array || isReadableLike(v)],
}

/** `name: 'type'` (optional) or `name: 'type!'` (required); an object: a nested object's fields. */
const SIGNAL = { signal: 'signal' }
/** `serverSideEncryption` of an upload or a copy (the core checks which members go with which type). */
const ENCRYPTION = { type: 'string!', keyId: 'string', bucketKey: 'boolean', key: 'bytes' }
const CALLS = {
  upload: [
    {
      arg: 'params',
      fields: {
        key: 'string!',
        body: 'body!',
        contentType: 'string!',
        contentLength: 'number',
        metadata: 'strings',
        ifNoneMatch: 'string',
        ifMatch: 'string',
        cacheControl: 'string',
        contentDisposition: 'string',
        contentEncoding: 'string',
        contentLanguage: 'string',
        expires: 'date',
        storageClass: 'string',
        tags: 'strings',
        checksum: 'string',
        serverSideEncryption: ENCRYPTION,
      },
    },
    { arg: 'options', fields: { ...SIGNAL, onProgress: 'function' } },
  ],
  download: [
    {
      arg: 'options',
      fields: {
        ...SIGNAL,
        onProgress: 'function',
        range: { start: 'number!', end: 'number' },
        concurrency: 'number',
        ifMatch: 'string',
        ifNoneMatch: 'string',
        versionId: 'string',
      },
    },
  ],
  delete: [{ arg: 'options', fields: { ...SIGNAL, versionId: 'string' } }],
  exists: [{ arg: 'options', fields: SIGNAL }],
  head: [{ arg: 'options', fields: SIGNAL }],
  getSignedUrl: [
    {
      arg: 'options',
      fields: {
        expiresIn: 'number',
        method: 'string',
        contentType: 'string',
        contentLength: 'number',
        responseContentType: 'string',
        downloadFilename: 'string',
        includeCustomerKey: 'boolean',
        ...SIGNAL,
      },
    },
  ],
  createPresignedPost: [
    { arg: 'params', fields: { key: 'string!', contentType: 'string', maxSize: 'number!', minSize: 'number', expiresIn: 'number' } },
    { arg: 'options', fields: SIGNAL },
  ],
  copy: [{ arg: 'options', fields: { contentType: 'string', metadata: 'strings', serverSideEncryption: ENCRYPTION, ...SIGNAL } }],
  list: [{ arg: 'options', fields: { prefix: 'string', cursor: 'string', limit: 'number', ...SIGNAL } }],
  listAll: [{ arg: 'options', fields: { prefix: 'string', pageSize: 'number', ...SIGNAL } }],
  deleteMany: [{ arg: 'options', fields: SIGNAL }],
}

/**
 * A table entry compiled once: `[{ name, required, words, ok, nested }]`, so a
 * call's check is a loop over plain records (it runs on every call).
 */
function compile(fields) {
  return Object.entries(fields).map(([name, type]) => {
    if (typeof type === 'object') return { name, nested: compile(type), words: `an object { ${Object.keys(type).join(', ')} }` }
    const required = type.endsWith('!')
    const base = type.replace('!', '')
    const [words, ok] = TYPES[base]
    return { name, required, words, ok, strings: base === 'strings' }
  })
}

/** Per method and argument: its compiled fields, its first required field, and where other names belong. */
const SPECS = new Map()
for (const [method, specs] of Object.entries(CALLS)) {
  for (const spec of specs) {
    const fields = compile(spec.fields)
    const required = fields.find((f) => f.required)?.name
    const elsewhere = (name) => specs.find((s) => s !== spec && name in s.fields)?.arg
    SPECS.set(method + ':' + spec.arg, { fields, names: spec.fields, required, elsewhere })
  }
}

const NONE = Object.freeze({})

/**
 * Checks argument `arg` of `method` against the table; returns it (or an
 * empty object when absent). `fail(field, message)` builds the error to throw.
 */
function check(method, arg, value, fail) {
  const spec = SPECS.get(method + ':' + arg)
  if (value === undefined || value === null) {
    if (spec.required) throw fail(arg, `must be an object with ${spec.required}`)
    return NONE
  }
  if (!isObject(value)) throw fail(arg, 'must be an object')
  for (const name in value) {
    if (!Object.hasOwn(spec.names, name) && Object.hasOwn(value, name)) {
      const home = spec.elsewhere(name)
      throw fail(name, home ? `belongs in ${method}()'s ${home} argument, not in ${arg}` : 'unknown option')
    }
  }
  checkFields(value, spec.fields, '', fail)
  return value
}

function checkFields(value, fields, prefix, fail) {
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]
    const v = value[f.name]
    if (v === undefined || (v === null && !f.required)) {
      if (f.required) throw fail(prefix + f.name, `is required (${f.words})`)
      continue
    }
    if (f.nested) {
      if (!isObject(v)) throw fail(prefix + f.name, `must be ${f.words}`)
      for (const name in v) {
        if (Object.hasOwn(v, name) && !f.nested.some((n) => n.name === name)) throw fail(`${prefix}${f.name}.${name}`, 'unknown option')
      }
      checkFields(v, f.nested, `${prefix}${f.name}.`, fail)
    } else if (!f.ok(v)) {
      const bad = f.strings && isObject(v) && Object.entries(v).find(([, s]) => typeof s !== 'string')
      if (bad) throw fail(`${prefix}${f.name}.${bad[0]}`, `must be a string, got ${typeof bad[1]}`)
      throw fail(prefix + f.name, `must be ${f.words}, got ${v === null ? 'null' : typeof v}`)
    }
  }
}

/** A key argument: a string of well-formed Unicode (napi would mangle lone surrogates). */
function checkKey(key, fail) {
  if (typeof key !== 'string') throw fail('key', `must be a string, got ${typeof key}`)
  if (typeof key.isWellFormed === 'function' && !key.isWellFormed()) throw fail('key', 'must be well-formed Unicode (no lone surrogates)')
}

module.exports = { check, checkKey }
