/**
 * Every failure the client reports is a TandemClientError with a stable `code`: the server's
 * codes (the catalogue in shared/errors.ts) pass through unchanged, and the client adds its own
 * for what only a client can see (a timeout, a lost connection, an indeterminate write).
 *
 * The one rule a caller must know: a write either succeeded, failed with nothing applied, or is
 * an IndeterminateWriteError (it may or may not have been applied). `isRetryable` says whether
 * repeating the call can succeed without applying a write twice.
 */
import { codes, type ErrorCode } from '../shared/errors.ts'
import type { StatementFailure, StatementResult, SyncState } from './results.ts'

export type ClientErrorCode =
  | ErrorCode
  /** A statement failed in SQLite (no such table, a constraint...); see SqlError. */
  | 'SQL_ERROR'
  /** The write is committed on the master but not confirmed by enough replicas; see SyncTimeoutError. */
  | 'SYNC_TIMEOUT'
  /** The idempotency key was already used for a different request. */
  | 'IDEMPOTENCY_KEY_REUSED'
  /** A write may or may not have been applied; see IndeterminateWriteError. */
  | 'INDETERMINATE_WRITE'
  /** The call ran out of time; nothing was applied. */
  | 'TIMEOUT'
  /** The caller's AbortSignal fired; nothing was applied. */
  | 'ABORTED'
  /** No node could be reached. */
  | 'UNAVAILABLE'
  /** The client was closed. */
  | 'CLOSED'
  /** A job ended failed (a task is dead) or cancelled; see JobFailedError. */
  | 'JOB_FAILED'
  /** A node answered something this client cannot read. */
  | 'BAD_RESPONSE'

export interface ErrorOptions {
  /** The HTTP status the node answered with. */
  status?: number
  /** The node the request went to. */
  node?: string
  cause?: unknown
}

export class TandemClientError extends Error {
  readonly code: ClientErrorCode
  /** The HTTP status when a node answered with this error; undefined when the client raised it. */
  readonly status: number | undefined
  /** The URL of the node the failed request went to, when there was one. */
  readonly node: string | undefined

  constructor(code: ClientErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'TandemClientError'
    this.code = code
    this.status = options.status
    this.node = options.node
  }

  /** True when repeating the same call can succeed and cannot apply a write twice. */
  get isRetryable(): boolean {
    if (this.code === 'TIMEOUT' || this.code === 'UNAVAILABLE') return true
    const entry = (codes as Record<string, { retry: string } | undefined>)[this.code]
    return entry !== undefined && entry.retry !== 'never'
  }
}

export function isTandemClientError(error: unknown, code?: ClientErrorCode): error is TandemClientError {
  return error instanceof TandemClientError && (code === undefined || error.code === code)
}

/**
 * A statement failed. With a transaction nothing was applied (`rolledBack`); without one, the
 * other statements stand, `results` holds every statement's outcome, and `lsn` is the entry
 * that holds those that succeeded.
 */
export class SqlError extends TandemClientError {
  /** The index of the first failed statement in the request. */
  readonly statementIndex: number
  /** Each statement's outcome, in order (a transaction stops at the failed one). */
  readonly results: (StatementResult | StatementFailure)[]
  readonly rolledBack: boolean
  /** The LSN holding the statements that succeeded; undefined when nothing was applied. */
  readonly lsn: number | undefined

  constructor(message: string, details: { statementIndex: number; results: (StatementResult | StatementFailure)[]; rolledBack: boolean; lsn: number | undefined; node: string; cause?: unknown }) {
    super('SQL_ERROR', message, { status: 200, node: details.node, cause: details.cause })
    this.name = 'SqlError'
    this.statementIndex = details.statementIndex
    this.results = details.results
    this.rolledBack = details.rolledBack
    this.lsn = details.lsn
  }

  override get isRetryable(): boolean {
    return false
  }
}

/**
 * The write IS committed on the master, at `lsn`, but fewer than `sync.required` replicas
 * confirmed it in time: it could be lost if the master is lost before they catch up. Never
 * retry it (that would apply it twice); wait for replication or accept the risk.
 */
export class SyncTimeoutError extends TandemClientError {
  readonly lsn: number
  /** Each statement's outcome; without a transaction some may have failed. */
  readonly results: (StatementResult | StatementFailure)[]
  readonly sync: SyncState

  constructor(message: string, details: { lsn: number; results: (StatementResult | StatementFailure)[]; sync: SyncState; node: string; status: number }) {
    super('SYNC_TIMEOUT', message, { status: details.status, node: details.node })
    this.name = 'SyncTimeoutError'
    this.lsn = details.lsn
    this.results = details.results
    this.sync = details.sync
  }

  override get isRetryable(): boolean {
    return false
  }
}

export type IndeterminateReason = 'timeout' | 'aborted' | 'connection-lost' | 'server-error'

/**
 * The write was sent and no answer came back (a timeout, an abort, a lost connection, a server
 * error): it may or may not have been applied. The client never retries such a write on its own
 * unless it carries an idempotency key; repeating it with the same `idempotencyKey` is safe
 * within the master's idempotency window, and answers with the original outcome.
 */
export class IndeterminateWriteError extends TandemClientError {
  readonly reason: IndeterminateReason
  readonly idempotencyKey: string | undefined

  constructor(message: string, details: { reason: IndeterminateReason; idempotencyKey: string | undefined; node: string; cause?: unknown }) {
    super('INDETERMINATE_WRITE', message, { node: details.node, cause: details.cause })
    this.name = 'IndeterminateWriteError'
    this.reason = details.reason
    this.idempotencyKey = details.idempotencyKey
  }

  override get isRetryable(): boolean {
    return this.idempotencyKey !== undefined
  }
}

/** The call ran out of time before anything could be applied. */
export class TimeoutError extends TandemClientError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('TIMEOUT', message, options)
    this.name = 'TimeoutError'
  }
}

/** The caller's signal aborted the call before anything could be applied. Named AbortError as fetch's is. */
export class AbortedError extends TandemClientError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('ABORTED', message, options)
    this.name = 'AbortError'
  }

  override get isRetryable(): boolean {
    return false
  }
}

/** The error a node answered with: `{ error, code }` and a 4xx/5xx status (or an unreadable body). */
export function errorFromResponse(status: number, body: unknown, node: string): TandemClientError {
  const b = typeof body === 'object' && body !== null ? (body as { error?: unknown; code?: unknown }) : {}
  const code = typeof b.code === 'string' && b.code !== '' ? (b.code as ClientErrorCode) : codeForStatus(status)
  const message = typeof b.error === 'string' && b.error !== '' ? b.error : `HTTP ${status} from ${node}`
  return new TandemClientError(code, message, { status, node })
}

/**
 * The node refused the caller (wrong or missing credentials, or a permission the user lacks).
 * Nothing else in the cluster would answer differently, so no loop retries it: a wrong password
 * fails at once instead of after every attempt.
 */
export function isAccessRefusal(error: unknown): error is TandemClientError {
  return error instanceof TandemClientError && (error.code === 'UNAUTHORIZED' || error.code === 'FORBIDDEN')
}

function codeForStatus(status: number): ClientErrorCode {
  if (status === 401) return 'UNAUTHORIZED'
  if (status === 403) return 'FORBIDDEN'
  if (status === 421) return 'NOT_MASTER'
  if (status === 404) return 'NOT_FOUND'
  if (status === 413) return 'BODY_TOO_LARGE'
  if (status === 502 || status === 503 || status === 504) return 'UNAVAILABLE'
  if (status >= 500) return 'INTERNAL'
  return 'BAD_REQUEST'
}
