/**
 * What the security tests share: a users file and a cluster secret written into a test's own
 * directory, HTTP Basic credentials, and requests that may carry any header (fetch refuses to set
 * `Host`, which the browser tests need), each with a timeout.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { waitFor } from './cluster.ts'

export interface UserEntry {
  username: string
  /** Plain, or a scrypt hash from hashPassword(); none for `*` (the anonymous user). */
  password?: string
  perms: string[]
}

/** Writes `<name>.json` (rqlite's format) into `dir` and returns its path. */
export function writeUsers(dir: string, name: string, users: UserEntry[]): string {
  const file = join(dir, `${name}.json`)
  writeFileSync(file, JSON.stringify(users, null, 2))
  return file
}

/** Writes a cluster secret file into `dir` and returns its path. */
export function writeSecret(dir: string, name: string, secret: string): string {
  const file = join(dir, name)
  writeFileSync(file, `${secret}\n`)
  return file
}

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
}

export interface CallResult<T = Record<string, unknown>> {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: T
}

export interface CallOptions {
  method?: 'GET' | 'POST' | 'OPTIONS'
  /** A string is sent as is (with content-type text/plain unless given); anything else as JSON. */
  body?: unknown
  /** An Authorization header value (see basic()). */
  auth?: string
  headers?: Record<string, string>
}

/** One HTTP request with whatever headers the test wants; never follows redirects. */
export async function call<T = Record<string, unknown>>(url: string, options: CallOptions = {}): Promise<CallResult<T>> {
  const headers: Record<string, string> = {}
  if (options.body !== undefined) headers['content-type'] = typeof options.body === 'string' ? 'text/plain' : 'application/json'
  if (options.auth !== undefined) headers['authorization'] = options.auth
  Object.assign(headers, options.headers)
  const response = await request(url, {
    method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
    headers,
    ...(options.body === undefined ? {} : { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) }),
    headersTimeout: 20_000,
    bodyTimeout: 20_000,
  })
  const text = await response.body.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    // Not JSON (a backup, /readyz): the text as it came.
  }
  return { status: response.statusCode, headers: response.headers, body: body as T }
}

/** Like call(), but fails the test unless the answer is 200. */
export async function callOk<T = Record<string, unknown>>(url: string, options: CallOptions = {}): Promise<T> {
  const result = await call<T>(url, options)
  if (result.status !== 200) throw new Error(`${options.method ?? 'GET'} ${url}: expected 200, got ${result.status} ${JSON.stringify(result.body)}`)
  return result.body
}

export interface Checksum {
  lsn: number
  checksum: string
}

/** Waits until every node holds the first node's checksum at `lsn` or later; `auth` undefined: an open cluster. */
export async function convergedWith(auth: string | undefined, urls: string[], lsn = 0, timeoutMs = 20_000): Promise<Checksum> {
  let last = ''
  return waitFor(async () => {
    const sums = await Promise.all(urls.map((u) => callOk<Checksum>(`${u}/db/checksum`, auth === undefined ? {} : { auth }).catch(() => undefined)))
    last = JSON.stringify(sums)
    const first = sums[0]
    return first !== undefined && first.lsn >= lsn && sums.every((s) => s?.lsn === first.lsn && s.checksum === first.checksum) ? { lsn: first.lsn, checksum: first.checksum } : undefined
  }, timeoutMs, () => `nodes did not converge at LSN ${lsn}: ${last}`)
}
