/** The client's options, their defaults and their bounds. */
import { TandemClientError } from './client-errors.ts'

export type ReadTarget = 'replicas' | 'master'
export type Consistency = 'session' | 'none'

export interface ConnectOptions {
  /** Each call's deadline, retries included. Default 10 000. */
  timeoutMs?: number
  /** Where reads go: replicas (falling back to the master) or the master. Default 'replicas'. */
  reads?: ReadTarget
  /**
   * 'session' (the default): every read waits for the session's LSN on the node that serves it,
   * so reads see the session's writes and never go back in time. 'none': whatever the node has.
   */
  consistency?: Consistency
  /** Replicas that must confirm each write before it is acknowledged (the master's default when unset). */
  sync?: number
  /** How long the master waits for those confirmations. */
  syncTimeoutMs?: number
  /** How long a replica may wait to reach the session's LSN before the client tries another node. Default 2 000. */
  minLsnTimeoutMs?: number
  /** How often the topology is learned again in the background; 0: only after a failure. Default 5 000. */
  refreshMs?: number
  /** Replicas whose lag is within this of the least-lagging one share reads in round robin. Default 100. */
  lagToleranceMs?: number
  /** Attempts of one call before it gives up (the deadline may end it sooner). Default 16. */
  attemptsMax?: number
  /** A node that failed a request gets no reads for this long. Default 1 000. */
  cooldownMs?: number
  /** Keep-alive connections per node. Default 16. */
  connectionsPerNode?: number
  /** The largest response body accepted. Default 256 MiB. */
  responseBytesMax?: number
  /** Resume a session: the LSN it had reached (a saved `session.lsn`). */
  sessionLsn?: number
  /**
   * HTTP Basic credentials sent with every request: a user of the nodes' --auth file. Discovery
   * (`GET /nodes`) needs the `status` permission. Without it, credentials in a URL
   * (`https://user:password@host:4001`) are taken.
   */
  auth?: Credentials
  /** TLS for https:// nodes: the CA that signs their certificates (PEM), and a client certificate and key for mutual TLS. */
  tls?: TlsOptions
}

export interface Credentials {
  username: string
  password: string
}

export interface TlsOptions {
  ca?: string | Buffer
  cert?: string | Buffer
  key?: string | Buffer
}

export type Settings = Required<Omit<ConnectOptions, 'sync' | 'syncTimeoutMs' | 'sessionLsn' | 'auth' | 'tls'>> & Pick<ConnectOptions, 'sync' | 'syncTimeoutMs' | 'auth' | 'tls'>

export function settingsOf(options: ConnectOptions): Settings {
  const settings: Settings = {
    timeoutMs: positive('timeoutMs', options.timeoutMs, 10_000),
    reads: oneOf('reads', options.reads, ['replicas', 'master'] as const, 'replicas'),
    consistency: oneOf('consistency', options.consistency, ['session', 'none'] as const, 'session'),
    minLsnTimeoutMs: positive('minLsnTimeoutMs', options.minLsnTimeoutMs, 2_000),
    refreshMs: nonNegative('refreshMs', options.refreshMs, 5_000),
    lagToleranceMs: nonNegative('lagToleranceMs', options.lagToleranceMs, 100),
    attemptsMax: positive('attemptsMax', options.attemptsMax, 16),
    cooldownMs: nonNegative('cooldownMs', options.cooldownMs, 1_000),
    connectionsPerNode: positive('connectionsPerNode', options.connectionsPerNode, 16),
    responseBytesMax: positive('responseBytesMax', options.responseBytesMax, 256 * 1024 * 1024),
  }
  if (options.sync !== undefined) settings.sync = nonNegative('sync', options.sync, 0)
  if (options.syncTimeoutMs !== undefined) settings.syncTimeoutMs = positive('syncTimeoutMs', options.syncTimeoutMs, 0)
  if (options.auth !== undefined) settings.auth = credentialsOf(options.auth)
  if (options.tls !== undefined) settings.tls = tlsOf(options.tls)
  return settings
}

/** A copy of `auth`, refused when HTTP Basic cannot carry it (the server would only answer 401). */
export function credentialsOf(auth: unknown): Credentials {
  if (typeof auth !== 'object' || auth === null) throw new TandemClientError('BAD_REQUEST', 'auth must be { username, password }')
  const { username, password } = auth as { username?: unknown; password?: unknown }
  if (typeof username !== 'string' || username === '' || username.includes(':')) {
    throw new TandemClientError('BAD_REQUEST', "auth.username must be a non-empty string without ':' (HTTP Basic cannot carry one)")
  }
  if (typeof password !== 'string' || password === '') throw new TandemClientError('BAD_REQUEST', `auth.password must be a non-empty string (user ${username})`)
  return { username, password }
}

function tlsOf(tls: unknown): TlsOptions {
  if (typeof tls !== 'object' || tls === null) throw new TandemClientError('BAD_REQUEST', 'tls must be { ca?, cert?, key? }')
  const copy: TlsOptions = {}
  for (const name of ['ca', 'cert', 'key'] as const) {
    const value = (tls as Record<string, unknown>)[name]
    if (value === undefined) continue
    if (typeof value !== 'string' && !Buffer.isBuffer(value)) throw new TandemClientError('BAD_REQUEST', `tls.${name} must be PEM text, a string or a Buffer (got ${value === null ? 'null' : typeof value})`)
    // Node reads these as PEM only; a file name passed by mistake would fail at the first handshake as a bad certificate.
    if (!(typeof value === 'string' ? value : value.toString('utf8')).includes('-----BEGIN ')) throw new TandemClientError('BAD_REQUEST', `tls.${name} is not PEM (no -----BEGIN line): pass the file's content, e.g. readFileSync(path), not its name`)
    copy[name] = value
  }
  // Half a client certificate would only fail later, at the first handshake, as a connection error.
  if ((copy.cert === undefined) !== (copy.key === undefined)) throw new TandemClientError('BAD_REQUEST', 'tls.cert and tls.key go together: a client certificate needs its private key')
  return copy
}

export function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value <= 0) throw new TandemClientError('BAD_REQUEST', `${name} must be a positive integer, got ${value}`)
  return value
}

export function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 0) throw new TandemClientError('BAD_REQUEST', `${name} must be a non-negative integer, got ${value}`)
  return value
}

export function oneOf<T extends string>(name: string, value: T | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback
  if (!allowed.includes(value)) throw new TandemClientError('BAD_REQUEST', `${name} must be ${allowed.join(' or ')}, got '${String(value)}'`)
  return value
}
