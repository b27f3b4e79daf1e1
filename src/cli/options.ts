import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { InvalidArgumentError } from 'commander'
import { goDurationMs } from '../shared/duration.ts'

export function integer(name: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `${name} must be an integer ≥ ${min}` : `${name} must be an integer from ${min} to ${max}`)
    }
    return Number(value)
  }
}

/** A duration in milliseconds: `30s`, `500ms`, `1m30s` (Go's form, as rqlite takes), or a bare number of ms; 0 is allowed. */
export function durationMs(value: string): number {
  const text = value.trim()
  const ms = /^\d+$/.test(text) ? Number(text) : goDurationMs(text)
  if (ms === undefined || !Number.isSafeInteger(Math.round(ms))) throw new InvalidArgumentError('use a duration such as 30s, 500ms or 1m30s (0 for none)')
  return Math.round(ms)
}

export function bytes(value: string): number {
  const match = /^(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i.exec(value.trim())
  if (match === null) throw new InvalidArgumentError('use a size such as 65536, 64MiB or 1GiB')
  const unit = (match[2] ?? 'b').toLowerCase()
  const factor = unit.startsWith('g') ? 1024 ** 3 : unit.startsWith('m') ? 1024 ** 2 : unit.startsWith('k') ? 1024 : 1
  return Number(match[1]) * factor
}

export function synchronous(value: string): 'full' | 'normal' | 'off' {
  const lowered = value.toLowerCase()
  if (lowered !== 'full' && lowered !== 'normal' && lowered !== 'off') throw new InvalidArgumentError('use full, normal or off')
  return lowered
}

/** `value` as an http(s) URL (http:// when it names no scheme); a password in it is never echoed. */
function httpUrl(value: string): URL {
  try {
    return new URL(/^https?:\/\//.test(value) ? value : `http://${value}`)
  } catch {
    throw new InvalidArgumentError(`${value.replace(/\/\/[^/@]*@/, '//***@')} is not a URL`)
  }
}

/**
 * --advertise-url: where other nodes and clients reach this node, an http(s) origin (no path,
 * query or credentials). Without a port, the node's listening port is added when it starts.
 */
export function advertiseUrl(value: string): string {
  let parsed: URL
  try {
    parsed = new URL(value)
  } catch {
    throw new InvalidArgumentError(`${value.replace(/\/\/[^/@]*@/, '//***@')} is not a URL: use http://HOST[:PORT] or https://HOST[:PORT]`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new InvalidArgumentError('use http://HOST[:PORT] or https://HOST[:PORT]')
  if (parsed.username !== '' || parsed.password !== '') throw new InvalidArgumentError('an advertised URL must not carry credentials')
  if (parsed.pathname !== '/' || parsed.search !== '' || parsed.hash !== '') throw new InvalidArgumentError('an advertised URL is an origin: no path, query or fragment')
  return value.replace(/\/+$/, '')
}

export function baseUrl(value: string): string {
  const parsed = httpUrl(value)
  // A node proves itself to its master with the cluster secret, not a user's password.
  if (parsed.username !== '' || parsed.password !== '') {
    throw new InvalidArgumentError('a node URL must not carry credentials: nodes prove to each other with --cluster-secret-file (README, Security)')
  }
  return parsed.origin
}

/**
 * A node URL for the commands that talk to one: like baseUrl, but `user:password@` is kept for
 * NodeAccess to take as credentials (URL.origin would drop it). It is never printed.
 */
export function nodeUrl(value: string): string {
  const parsed = httpUrl(value)
  const userinfo = parsed.username === '' ? '' : `${parsed.username}${parsed.password === '' ? '' : `:${parsed.password}`}@`
  return `${parsed.protocol}//${userinfo}${parsed.host}`
}

/** A module path, relative to the working directory, as a file: URL. */
export function moduleUrl(value: string): string {
  const path = resolve(value)
  if (!existsSync(path)) throw new InvalidArgumentError(`${path} does not exist`)
  return pathToFileURL(path).href
}

/**
 * --coordinator: etcd's client URLs, comma-separated (http(s) origins), or
 * `etcd://HOST:2379[,HOST:2379…][/PREFIX]` (plain HTTP, and the key prefix in the path). etcd's
 * own users are not supported: a URL with credentials is refused rather than sent in the clear.
 */
export function coordinatorTarget(value: string): { urls: string[]; prefix?: string } {
  const etcd = /^etcd:\/\/([^/]*)(\/.*)?$/.exec(value.trim())
  if (etcd === null) return { urls: coordinatorUrls(value) }
  const urls = coordinatorUrls(etcd[1]!.split(',').map((host) => `http://${host}`).join(','))
  return etcd[2] === undefined || etcd[2] === '/' ? { urls } : { urls, prefix: coordinatorPrefix(etcd[2].replace(/\/+$/, '')) }
}

function coordinatorUrls(value: string): string[] {
  const urls = value.split(',').map((u) => u.trim()).filter((u) => u !== '')
  if (urls.length === 0 || urls.length > 16) throw new InvalidArgumentError('give 1 to 16 etcd client URLs, comma-separated, e.g. http://127.0.0.1:2379')
  return urls.map((url) => {
    const parsed = httpUrl(url)
    if (parsed.username !== '' || parsed.password !== '') throw new InvalidArgumentError('an etcd URL must not carry credentials (etcd users are not supported: restrict who reaches etcd instead)')
    if (parsed.pathname !== '/' || parsed.search !== '' || parsed.hash !== '') throw new InvalidArgumentError(`${parsed.origin}${parsed.pathname}: an etcd URL is an origin, with no path`)
    return parsed.origin
  })
}

/** --coordinator-prefix: where in etcd this cluster keeps its keys, `/name[/name…]` in plain ASCII. */
export function coordinatorPrefix(value: string): string {
  if (!/^(\/[A-Za-z0-9_.-]{1,64}){1,8}$/.test(value) || value.split('/').some((name) => /^\.+$/.test(name))) throw new InvalidArgumentError('use a key prefix such as /tandem or /tandem/orders: slash-separated names of letters, digits, _ . and -')
  return value
}

/** --coordinator-ttl: the master's lease in etcd, whole seconds from 2 s (etcd's shortest) to 60 s. */
export function coordinatorTtlMs(value: string): number {
  const ms = durationMs(value)
  if (ms < 2000 || ms > 60_000 || ms % 1000 !== 0) throw new InvalidArgumentError('use whole seconds from 2s to 60s')
  return ms
}
