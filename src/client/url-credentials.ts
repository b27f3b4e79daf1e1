/**
 * Credentials written into node URLs, as rqlite clients take them: `https://alice:secret@host:4001`.
 * They become the client's `auth` (when it has none) and leave the URL, so no topology view,
 * error message or log line ever shows them: every URL the client keeps is the stripped one.
 */
import { TandemClientError } from './client-errors.ts'
import { credentialsOf, type Credentials } from './options.ts'

export interface SplitUrls {
  /** The URLs without their userinfo, otherwise as given. */
  urls: string[]
  /** The credentials the URLs carried; undefined when none did. */
  auth: Credentials | undefined
}

/** Takes the userinfo out of each URL; every URL that carries some must carry the same. */
export function splitUrlCredentials(urls: readonly string[]): SplitUrls {
  let auth: Credentials | undefined
  const stripped = urls.map((url) => {
    const { url: bare, auth: found } = splitOne(url)
    if (found === undefined) return bare
    if (auth !== undefined && (auth.username !== found.username || auth.password !== found.password)) {
      throw new TandemClientError('BAD_REQUEST', 'the node URLs carry different credentials: give one user (or pass `auth` and no credentials in the URLs)')
    }
    auth = found
    return bare
  })
  return { urls: stripped, auth }
}

function splitOne(url: string): { url: string; auth: Credentials | undefined } {
  if (typeof url !== 'string') throw new TandemClientError('BAD_REQUEST', `a node URL must be a string, got ${typeof url}`)
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new TandemClientError('BAD_REQUEST', `not a node URL: '${redact(url)}' (expected e.g. http://127.0.0.1:4001)`)
  }
  if (parsed.username === '' && parsed.password === '') return { url, auth: undefined }
  const username = decode(parsed.username)
  const password = decode(parsed.password)
  parsed.username = ''
  parsed.password = ''
  if (password === '') throw new TandemClientError('BAD_REQUEST', `the URL ${parsed.href} names user ${username} without a password (write user:password@host)`)
  return { url: parsed.href, auth: credentialsOf({ username, password }) }
}

/** URLs hold userinfo percent-encoded (a password with '@' or ':' must be written %40, %3A). */
function decode(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/** A URL that would not parse, with anything that looks like userinfo hidden. */
function redact(url: string): string {
  return url.replace(/\/\/[^/@]*@/, '//***@')
}
