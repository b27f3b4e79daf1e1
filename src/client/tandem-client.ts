/**
 * The client: `connect(urls)` learns the topology, then writes go to the master, reads spread
 * over the replicas, and a session position makes every read read-your-writes and monotonic.
 * Clients made by `withSession()` share the connections and topology of the one `connect()`
 * made; each has its own session.
 */
import { systemClock } from '../shared/clock.ts'
import { TandemClientError } from './client-errors.ts'
import { HttpTransport, type Transport } from './http-transport.ts'
import { Jobs } from './jobs.ts'
import { settingsOf, type ConnectOptions } from './options.ts'
import { read, type QueryOptions } from './reader.ts'
import type { BatchResult, ExecResult, Row, Rows, StatementResult, TxResult } from './results.ts'
import { Session } from './session.ts'
import { statementOf, type Params, type Statement } from './statements.ts'
import { Topology, type TopologyView } from './topology.ts'
import { Transaction } from './transaction.ts'
import { splitUrlCredentials } from './url-credentials.ts'
import { write, type Connection, type WriteOptions } from './writer.ts'

export interface BatchOptions extends WriteOptions {
  /** All statements or none (the first failure rolls back the rest). Default false. */
  transaction?: boolean
}

/** The shared part: connections, topology, the background refresh, the calls in flight. Internal. */
export class Core implements Connection {
  readonly transport: Transport
  readonly topology: Topology
  readonly settings: ReturnType<typeof settingsOf>
  private readonly refreshTimer: NodeJS.Timeout | undefined
  private readonly inFlight = new Set<Promise<unknown>>()
  private closing: Promise<void> | undefined

  constructor(urls: readonly string[], options: ConnectOptions) {
    // Credentials in a URL count only when `auth` is not given; they leave the URLs either way.
    const split = splitUrlCredentials(urls)
    this.settings = settingsOf(options.auth === undefined && split.auth !== undefined ? { ...options, auth: split.auth } : options)
    const { auth, tls } = this.settings
    this.transport = new HttpTransport({
      connectionsPerNode: this.settings.connectionsPerNode,
      responseBytesMax: this.settings.responseBytesMax,
      ...(auth === undefined ? {} : { auth }),
      ...(tls === undefined ? {} : { tls }),
    })
    this.topology = new Topology({
      seeds: split.urls,
      transport: this.transport,
      clock: systemClock,
      discoveryTimeoutMs: this.settings.timeoutMs,
      cooldownMs: this.settings.cooldownMs,
      lagToleranceMs: this.settings.lagToleranceMs,
    })
    if (this.settings.refreshMs > 0) {
      this.refreshTimer = setInterval(() => this.topology.refreshInBackground(), this.settings.refreshMs)
      this.refreshTimer.unref()
    }
  }

  /** Runs a call, refusing it once the client is closing. */
  run<T>(call: () => Promise<T>): Promise<T> {
    if (this.closing !== undefined) return Promise.reject(new TandemClientError('CLOSED', 'the client is closed'))
    const promise = call()
    this.inFlight.add(promise)
    const forget = () => this.inFlight.delete(promise)
    promise.then(forget, forget)
    return promise
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.refreshTimer)
      // Calls in flight end on their own deadline; cutting them would make writes indeterminate.
      await Promise.allSettled([...this.inFlight])
      this.topology.close()
      await this.transport.close()
    })()
    return this.closing
  }
}

export class TandemClient {
  /** This client's session: the highest LSN it has seen. */
  readonly session: Session
  /** Jobs that replicas run: submit, wait, watch, list, cancel, retry (docs/jobs.md). */
  readonly jobs: Jobs
  private readonly core: Core

  /** Use `connect()`. */
  constructor(core: Core, session: Session) {
    this.core = core
    this.session = session
    this.jobs = new Jobs(core, session)
  }

  /** Runs one writing statement on the master. */
  async execute(sql: string, params?: Params, options: WriteOptions = {}): Promise<ExecResult> {
    const { results, ...ack } = await this.core.run(() => write(this.core, this.session, [statementOf(sql, params)], false, options))
    const result: StatementResult = results[0] ?? { rowsAffected: 0, lastInsertId: 0 }
    return { ...ack, ...result }
  }

  /** Runs one reading statement and returns its rows as objects of type R. */
  query<R extends object = Row>(sql: string, params?: Params, options: QueryOptions = {}): Promise<Rows<R>> {
    return this.core.run(() => read<R>(this.core, this.session, statementOf(sql, params), options))
  }

  /** Runs statements in one request; with `transaction: true`, all or none. */
  batch(statements: readonly Statement[], options: BatchOptions = {}): Promise<BatchResult> {
    return this.core.run(() => write(this.core, this.session, statements, options.transaction ?? false, options))
  }

  /**
   * Collects the statements `fn` adds with `t.execute()` and sends them as one all-or-nothing
   * request when it returns. Returns every statement's result and what `fn` returned. If `fn`
   * throws, nothing is sent.
   */
  async tx<T>(fn: (t: Transaction) => T | Promise<T>, options: WriteOptions = {}): Promise<TxResult<T>> {
    const transaction = new Transaction()
    let value: T
    try {
      value = await fn(transaction)
    } finally {
      transaction.seal()
    }
    const statements = transaction.seal()
    if (statements.length === 0) throw new TandemClientError('BAD_REQUEST', 'the transaction has no statements: call t.execute() in the tx() callback')
    const result = await this.core.run(() => write(this.core, this.session, statements, true, options))
    return { ...result, value }
  }

  /** What the client knows of the cluster: the master, and each replica with its lag. */
  topology(): TopologyView {
    return this.core.topology.snapshot()
  }

  /** Learns the topology now. */
  refresh(): Promise<TopologyView> {
    return this.core.run(() => this.core.topology.refresh())
  }

  /**
   * A client on the same connections with a session of its own: a new one, or one resumed from
   * an LSN saved elsewhere (a cookie, a job). For one session per user or per request.
   */
  withSession(session: Session | number = new Session()): TandemClient {
    return new TandemClient(this.core, typeof session === 'number' ? new Session(session) : session)
  }

  /** Waits for calls in flight, then closes every connection. Closes the clients made by withSession() too. */
  close(): Promise<void> {
    // Job event streams end only with their job: they are not calls to wait for.
    this.jobs.closeStreams()
    return this.core.close()
  }
}

/**
 * Connects to a Tandem cluster through any of its nodes: learns the topology from the first that
 * answers (the others may be down), and returns a client. Fails with UNAVAILABLE when none answers,
 * and with UNAUTHORIZED or FORBIDDEN when the nodes refuse the credentials (`options.auth`, or
 * `user:password@` in the URLs) or the user lacks the `status` permission discovery needs.
 */
export async function connect(urls: string | readonly string[], options: ConnectOptions = {}): Promise<TandemClient> {
  const list = typeof urls === 'string' ? [urls] : urls
  if (list.length === 0) throw new TandemClientError('BAD_REQUEST', 'connect() needs at least one node URL')
  const core = new Core(list, options)
  const client = new TandemClient(core, new Session(options.sessionLsn ?? 0))
  try {
    await core.topology.refresh()
  } catch (error) {
    await core.close()
    throw error
  }
  return client
}
