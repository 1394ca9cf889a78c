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
  function: ['a function', (v) => typeof v === 'function'],
  signal: ['an AbortSignal', isAbortSignal],
  strings: ['an object of strings', (v) => isObject(v) && Object.values(v).every((s) => typeof s === 'string')],
  body: ['a Buffer, Uint8Array or Readable stream', (v) => v instanceof Uint8Array || isReadableLike(v)],
  array: ['an array of keys', Array.isArray],
  object: ['an object', isObject],
}

/** `name: 'type'` (optional) or `name: 'type!'` (required); an object: a nested object's fields. */
const SIGNAL = { signal: 'signal' }
const CALLS = {
  upload: [
    { arg: 'params', fields: { key: 'string!', body: 'body!', contentType: 'string!', contentLength: 'number', metadata: 'strings' } },
    { arg: 'options', fields: { ...SIGNAL, onProgress: 'function' } },
  ],
  download: [{ arg: 'options', fields: { ...SIGNAL, onProgress: 'function', range: { start: 'number!', end: 'number' }, concurrency: 'number' } }],
  delete: [{ arg: 'options', fields: SIGNAL }],
  exists: [{ arg: 'options', fields: SIGNAL }],
  head: [{ arg: 'options', fields: SIGNAL }],
  getSignedUrl: [
    {
      arg: 'options',
      fields: { expiresIn: 'number', method: 'string', contentType: 'string', contentLength: 'number', responseContentType: 'string', downloadFilename: 'string', ...SIGNAL },
    },
  ],
  createPresignedPost: [
    { arg: 'params', fields: { key: 'string!', contentType: 'string', maxSize: 'number!', minSize: 'number', expiresIn: 'number' } },
    { arg: 'options', fields: SIGNAL },
  ],
  copy: [{ arg: 'options', fields: { contentType: 'string', metadata: 'strings', ...SIGNAL } }],
  list: [{ arg: 'options', fields: { prefix: 'string', cursor: 'string', limit: 'number', ...SIGNAL } }],
  listAll: [{ arg: 'options', fields: { prefix: 'string', pageSize: 'number', ...SIGNAL } }],
  deleteMany: [{ arg: 'options', fields: SIGNAL }],
}

/**
 * Checks argument `arg` of `method` against the table; returns it (or `{}`
 * when absent). `fail(field, message)` builds the error to throw.
 */
function check(method, arg, value, fail) {
  const specs = CALLS[method]
  const spec = specs.find((s) => s.arg === arg)
  if (value === undefined || value === null) {
    const required = Object.entries(spec.fields).find(([, t]) => typeof t === 'string' && t.endsWith('!'))
    if (required) throw fail(arg, `must be an object with ${required[0]}`)
    return {}
  }
  if (!isObject(value)) throw fail(arg, 'must be an object')
  checkFields(value, spec.fields, '', (name) => {
    const home = specs.find((s) => s !== spec && name in s.fields)
    return home ? `belongs in ${method}()'s ${home.arg} argument, not in ${arg}` : 'unknown option'
  }, fail)
  return value
}

function checkFields(value, fields, prefix, unknown, fail) {
  for (const name of Object.keys(value)) {
    if (!(name in fields)) throw fail(prefix + name, unknown(name))
  }
  for (const [name, type] of Object.entries(fields)) {
    const v = value[name]
    const field = prefix + name
    if (typeof type === 'object') {
      if (v === undefined) continue
      if (!isObject(v)) throw fail(field, `must be an object { ${Object.keys(type).join(', ')} }`)
      checkFields(v, type, `${field}.`, () => 'unknown option', fail)
      continue
    }
    const required = type.endsWith('!')
    const [words, ok] = TYPES[type.replace('!', '')]
    if (v === undefined || (v === null && !required)) {
      if (required) throw fail(field, `is required (${words})`)
      continue
    }
    if (!ok(v)) {
      const bad = type.startsWith('strings') && isObject(v) && Object.entries(v).find(([, s]) => typeof s !== 'string')
      if (bad) throw fail(`${field}.${bad[0]}`, `must be a string, got ${typeof bad[1]}`)
      throw fail(field, `must be ${words}, got ${v === null ? 'null' : typeof v}`)
    }
  }
}

/** A key argument: a string of well-formed Unicode (napi would mangle lone surrogates). */
function checkKey(key, fail) {
  if (typeof key !== 'string') throw fail('key', `must be a string, got ${typeof key}`)
  if (typeof key.isWellFormed === 'function' && !key.isWellFormed()) throw fail('key', 'must be well-formed Unicode (no lone surrogates)')
}

module.exports = { check, checkKey, isAbortSignal, TYPES }
