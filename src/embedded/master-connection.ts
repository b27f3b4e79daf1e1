/**
 * The embedded replica's line to its master: a client of the client library (src/client), so a
 * write through an embedded replica follows the client's retry table (src/client/DESIGN.md) and
 * fails with the client's errors. There is one set of rules for "was it applied?", not two.
 *
 * Connecting needs the master: the client learns the topology first. An embedded replica with
 * data must open and serve reads while the master is away, so the client is made lazily: the
 * replica starts connecting when it opens, and a call that finds no client connects again.
 *
 * The replica streams from the URL it was given, while the client writes to the master the
 * topology names: the URL the master advertises, usually the one given. A given URL the topology
 * lists as a replica is refused with NOT_MASTER, since the replica cannot stream from it. A given
 * URL that matches no listed node (the master under another name) is taken as the master, with a
 * warning.
 */
import { TandemClientError, connect, type ConnectOptions, type TandemClient } from '../client/index.ts'

/**
 * Attempts of one call. An embedded replica has one master and no other node to fall over to:
 * a few attempts ride out a blip (a 503, a refused connection during a restart) without holding
 * the application for the client's default of 16.
 */
const attemptsMax = 4

export class MasterConnection {
  /** The master's URL as given, without a trailing slash (the spelling the client's topology uses). */
  readonly url: string
  /** The user the connection writes as (given, or from the URL's userinfo); the replication stream presents it too. */
  readonly auth: ConnectOptions['auth']
  private readonly options: ConnectOptions
  private readonly warn: (fields: Record<string, unknown>, message: string) => void
  /** Undefined until the first call, and after a failed attempt to connect. */
  private connecting: Promise<TandemClient> | undefined
  private isClosed = false

  constructor(url: string, timeoutMs: number, warn: (fields: Record<string, unknown>, message: string) => void, credentials: Pick<ConnectOptions, 'auth' | 'tls'> = {}) {
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch (error) {
      throw new TandemClientError('BAD_REQUEST', `the master URL ${JSON.stringify(url)} is not a URL`, { cause: error })
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new TandemClientError('BAD_REQUEST', `the master URL must be http:// or https://, not ${JSON.stringify(url)}`)
    }
    // The URL is kept without its userinfo (it shows in logs and /status); credentials in it
    // count when `auth` is not given, as they do for connect().
    this.url = `${parsed.protocol}//${parsed.host}${parsed.pathname.replace(/\/+$/, '')}`
    const auth = credentials.auth ?? credentialsInUrl(parsed)
    this.auth = auth
    this.warn = warn
    // Reads here go to the master only to learn its LSN (sync()); the session plays no part.
    // No background refresh: the topology is learned again only after a failure.
    this.options = { reads: 'master', consistency: 'none', refreshMs: 0, timeoutMs, attemptsMax, ...credentials, ...(auth === undefined ? {} : { auth }) }
  }

  /** The client, connecting first when no attempt has succeeded yet. */
  client(): Promise<TandemClient> {
    if (this.isClosed) return Promise.reject(new TandemClientError('CLOSED', 'the embedded replica is closed'))
    if (this.connecting !== undefined) return this.connecting
    const connecting = this.connect()
    this.connecting = connecting
    void connecting.catch(() => {
      if (this.connecting === connecting) this.connecting = undefined
    })
    return connecting
  }

  /**
   * The master's newest LSN, and never less than any write through this connection was answered
   * with (the client's session holds both). Any read on the master answers with its LSN
   * (X-Tandem-Lsn), so a trivial one asks. Connecting first, when needed, is bounded by the
   * request timeout rather than `timeoutMs`.
   */
  async lsn(timeoutMs: number): Promise<number> {
    const client = await this.client()
    const rows = await client.query('SELECT 1', undefined, { timeoutMs })
    return Math.max(rows.lsn, client.session.lsn)
  }

  /** Waits for calls in flight (and a connection attempt in progress), then closes. Idempotent. */
  async close(): Promise<void> {
    this.isClosed = true
    const connecting = this.connecting
    this.connecting = undefined
    const client = await connecting?.catch(() => undefined)
    await client?.close()
  }

  private async connect(): Promise<TandemClient> {
    const client = await connect([this.url], this.options)
    const { master, replicas } = client.topology()
    if (master === this.url) return client
    if (replicas.some((replica) => replica.url === this.url)) {
      await client.close()
      throw new TandemClientError('NOT_MASTER', `${this.url} is a replica; its master is ${master ?? 'unknown'}: open the embedded replica on the master's URL`, { node: this.url })
    }
    this.warn({ masterUrl: this.url, advertisedUrl: master }, 'the master advertises another URL than the one given; writes go to the advertised one')
    return client
  }
}

/** `user:password@` of a URL, percent-decoded; undefined without a user. */
function credentialsInUrl(url: URL): ConnectOptions['auth'] {
  if (url.username === '') return undefined
  return { username: decoded(url.username), password: decoded(url.password) }
}

function decoded(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}
