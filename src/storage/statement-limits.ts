/**
 * Statement time limits that really stop a statement, and cancellation from any thread, through
 * Tandem's SQLite extension (native/statement-guard.c, built into build/ by `npm run build`).
 *
 * A connection that runs client SQL is watched: the extension gives it a progress handler that
 * stops its statement (SQLITE_INTERRUPT, the connection usable again at once) when the statement
 * has run past the connection's limit, or when another thread cancelled it. Each thread that
 * watches or controls connections opens one private in-memory control connection, through which
 * it sets limits and cancels: the extension's functions exist on that connection only, so client
 * SQL can reach none of them.
 *
 * Without the extension (no C compiler when the project was built) nothing is watched, every
 * limit is off, and the node says so when it starts (StatementLimits.unavailableReason).
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { openConnection, type Connection, type Statement } from './sqlite.ts'

/** The per-statement error for a result past --max-result-bytes. */
export function resultTooLargeError(): string {
  const bytes = StatementLimits.forThisThread()?.resultBytesMax() ?? 0
  return `result too large: the statement's rows pass --max-result-bytes (${bytes} bytes, counting 16 per value plus its own bytes); select fewer rows (LIMIT) or columns`
}

/** How one client read may be stopped. */
export interface ReadStops {
  /** Each statement's time limit in ms; undefined: the node's --query-timeout. */
  limitMs?: number | undefined
  /** Aborted when the read's client went away: the read is dropped, or its statement stopped. */
  signal?: AbortSignal
}

/**
 * A request's limit (rqlite's db_timeout) against the node's (--query-timeout): a request may
 * lower the node's limit, never raise it; undefined or 0 asks for the node's. 0: none.
 */
export function effectiveLimitMs(requestedMs: number | undefined, nodeMs: number): number {
  if (requestedMs === undefined || requestedMs <= 0) return nodeMs
  return nodeMs === 0 ? requestedMs : Math.min(requestedMs, nodeMs)
}

/** Why a statement was stopped; `stopping`: it was running when the process got SIGTERM or SIGINT. */
export type StopReason = 'time-limit' | 'cancelled' | 'stopping' | 'result-too-large'

const extensionPath = fileURLToPath(new URL(`../../build/statement-guard.${process.platform === 'darwin' ? 'dylib' : 'so'}`, import.meta.url))

/**
 * SQLITE_INTERRUPT: what a stopped statement throws. The binding attaches the code to some
 * errors only (get() yes, all() no), so the message, SQLite's text for the code, counts too; a
 * statement whose own error reads the same (a trigger's RAISE) is told apart by the guard's reason.
 */
export function isInterrupted(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  return (error as { errcode?: unknown }).errcode === 9 || (error as { message?: unknown }).message === 'interrupted'
}

/** The control side, one per thread. */
export class StatementLimits {
  private static thisThread: StatementLimits | undefined

  /**
   * Undefined when the extension is there; else why limits are off. The bench measures what the
   * guard costs against nodes started with TANDEM_UNSAFE_NO_STATEMENT_GUARD=1.
   */
  static readonly unavailableReason: string | undefined =
    process.env['TANDEM_UNSAFE_NO_STATEMENT_GUARD'] === '1'
      ? 'TANDEM_UNSAFE_NO_STATEMENT_GUARD=1: statements run without time limits and cannot be cancelled (for benchmarks only)'
      : existsSync(extensionPath)
        ? undefined
        : `${extensionPath} is missing (it is built by npm run build, which needs a C compiler): statements run without time limits`

  /** This thread's, or undefined when the extension is missing. */
  static forThisThread(): StatementLimits | undefined {
    if (StatementLimits.unavailableReason !== undefined) return undefined
    StatementLimits.thisThread ??= new StatementLimits()
    return StatementLimits.thisThread
  }

  private readonly control: Connection
  private readonly lastWatched: Statement
  private readonly setLimit: Statement
  private readonly cancelOne: Statement
  private readonly resetOne: Statement
  private readonly reasonOf: Statement
  private readonly stopOnSignalsCall: Statement
  private readonly forgetOne: Statement
  private readonly resultLimit: Statement
  private readonly exemptOne: Statement

  private constructor() {
    this.control = openConnection(':memory:', { extensions: true })
    this.control.enableLoadExtension(true)
    this.control.loadExtension(extensionPath, 'sqlite3_tandemguard_control')
    this.control.enableLoadExtension(false)
    const prepare = (sql: string): Statement => {
      const statement = this.control.prepare(sql)
      statement.setReturnArrays(true)
      return statement
    }
    this.lastWatched = prepare('SELECT tandem_guard_last()')
    this.setLimit = prepare('SELECT tandem_guard_limit(?, ?)')
    this.cancelOne = prepare('SELECT tandem_guard_cancel(?)')
    this.resetOne = prepare('SELECT tandem_guard_reset(?)')
    this.reasonOf = prepare('SELECT tandem_guard_reason(?)')
    this.stopOnSignalsCall = prepare('SELECT tandem_guard_stop_on_signals()')
    this.forgetOne = prepare('SELECT tandem_guard_forget(?)')
    this.resultLimit = prepare('SELECT tandem_guard_result_limit(?)')
    this.exemptOne = prepare('SELECT tandem_guard_exempt(?, ?)')
  }

  /**
   * Watches a connection opened with `extensions` on this thread, with a limit of `limitMs`
   * per statement (0: none). Returns its handle.
   */
  watch(connection: Connection, limitMs: number): WatchedConnection {
    connection.enableLoadExtension(true)
    try {
      connection.loadExtension(extensionPath, 'sqlite3_tandemguard_watch')
    } finally {
      connection.enableLoadExtension(false)
    }
    const id = (this.lastWatched.get() as [number])[0]
    const watched = new WatchedConnection(this, id, limitMs)
    this.limit(id, limitMs)
    return watched
  }

  /** Any thread's watched connection: its running statement stops, and so will its next until reset. */
  cancel(id: number): void {
    this.cancelOne.get(id)
  }

  /** A thread that held watched connection `id` was ended without closing it: its slot is reused. */
  forget(id: number): void {
    this.forgetOne.get(id)
  }

  /** @internal */
  limit(id: number, ms: number): void {
    this.setLimit.get(id, ms)
  }

  /** @internal */
  exempt(id: number, on: boolean): void {
    this.exemptOne.get(id, on ? 1 : 0)
  }

  /** @internal */
  reset(id: number): void {
    this.resetOne.get(id)
  }

  /** @internal */
  reason(id: number): StopReason | undefined {
    const code = (this.reasonOf.get(id) as [number])[0]
    return code === 1 ? 'time-limit' : code === 2 ? 'cancelled' : code === 3 ? 'stopping' : code === 4 ? 'result-too-large' : undefined
  }

  /**
   * The most a statement's result may hold (--max-result-bytes), for every connection any thread
   * watches from now on: each value counts 16 bytes plus its own (8 for a number). A statement
   * past it is stopped (0: no limit).
   */
  setResultBytesMax(bytes: number): void {
    this.resultLimit.get(bytes)
  }

  /** The limit setResultBytesMax() set, in this process. */
  resultBytesMax(): number {
    return Number((this.resultLimit.get(-1) as [number | bigint])[0])
  }

  /**
   * From now on SIGTERM and SIGINT first stop every statement running in the process, on any
   * thread, then reach the handlers already installed (call it after process.on('SIGTERM')):
   * a thread busy in SQLite, the event loop's included, cannot hold a stopping node.
   */
  stopOnSignals(): void {
    this.stopOnSignalsCall.get()
  }
}

/** A connection's side, used on the connection's own thread. */
export class WatchedConnection {
  /** The connection's id, for StatementLimits.cancel() from any thread. */
  readonly id: number
  /** The limit each statement gets unless withLimit() says otherwise. */
  readonly defaultLimitMs: number
  private readonly limits: StatementLimits
  private currentMs: number

  constructor(limits: StatementLimits, id: number, limitMs: number) {
    this.limits = limits
    this.id = id
    this.defaultLimitMs = limitMs
    this.currentMs = limitMs
  }

  /**
   * Runs `fn` with every statement limited to `ms` (0: none), then goes back to the limit in
   * force before (calls nest). Changing the limit costs a call into SQLite, so it is made only
   * when `ms` differs from the limit in force: give a connection the default its common case needs.
   */
  withLimit<T>(ms: number, fn: () => T): T {
    if (ms === this.currentMs) return fn()
    const previous = this.currentMs
    this.set(ms)
    try {
      return fn()
    } finally {
      this.set(previous)
    }
  }

  /**
   * Runs Tandem's own work (a checksum over every table) free of the time and result limits that
   * bound client statements; a cancel or a signal still stops it.
   */
  exempt<T>(fn: () => T): T {
    this.limits.exempt(this.id, true)
    try {
      return fn()
    } finally {
      this.limits.exempt(this.id, false)
    }
  }

  /**
   * Why the guard stopped the statement that threw `error`, with the connection made ready for
   * the next statement (a cancel stays raised until then); undefined when the guard did not stop
   * it (any other error, or a trigger's RAISE that reads `interrupted`).
   */
  stopReasonOf(error: unknown): StopReason | undefined {
    if (!isInterrupted(error)) return undefined
    const reason = this.limits.reason(this.id)
    this.limits.reset(this.id)
    return reason
  }

  private set(ms: number): void {
    this.limits.limit(this.id, ms)
    this.currentMs = ms
  }
}

/**
 * Watches `connection` (opened with `extensions`) if limits are available, else returns
 * undefined. `limitMs` 0: statements have no time limit, but can still be cancelled.
 */
export function watchConnection(connection: Connection, limitMs: number): WatchedConnection | undefined {
  return StatementLimits.forThisThread()?.watch(connection, limitMs)
}
