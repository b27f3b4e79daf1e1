/**
 * The two failures an embedded replica reports that the server's catalogue (shared/errors.ts)
 * has no code for, because over HTTP one travels inside a 200 (a statement's SQL error) and the
 * other never reaches a response (a write whose answer was lost). Their codes and shapes match
 * the client library's (src/client/client-errors.ts), so an application sees one vocabulary.
 * Every other failure is a TandemError with the catalogue's code: the master's own code for its
 * HTTP errors, NO_MASTER when a request could not be delivered, MIN_LSN_TIMEOUT for waits,
 * SQL_REFUSED / NOT_MASTER for local SQL the policy refuses, SYNC_TIMEOUT for a write committed
 * on the master but not confirmed by enough replicas.
 */
import type { StatementOutcome } from './master-client.ts'

/**
 * A statement failed in SQLite: a constraint, a missing table, a syntax error. For a local read
 * the binding's error is the `cause`. For a write, `results` holds every statement's outcome
 * (a transaction stops at the failed one); with a transaction nothing was applied
 * (`rolledBack`); without one the other statements stand, in the entry at `lsn`.
 */
export class SqlError extends Error {
  readonly code = 'SQL_ERROR'
  /** The index of the first failed statement (0 for a read). */
  readonly statementIndex: number
  readonly results: StatementOutcome[]
  readonly rolledBack: boolean
  /** The LSN holding the statements that succeeded; undefined when nothing was applied. */
  readonly lsn: number | undefined

  constructor(message: string, details: { cause?: unknown; statementIndex?: number; results?: StatementOutcome[]; rolledBack?: boolean; lsn?: number } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.name = 'SqlError'
    this.statementIndex = details.statementIndex ?? 0
    this.results = details.results ?? []
    this.rolledBack = details.rolledBack ?? true
    this.lsn = details.lsn
  }
}

/**
 * A write was sent to the master and no answer came back (a lost connection, a timeout, a 500),
 * even after retrying it with its idempotency key when it had one: it may or may not have been
 * applied. Repeating it with the same `idempotencyKey` (an option of execute and batch) is safe
 * within the master's idempotency window (24 h by default) and answers with the first outcome.
 */
export class IndeterminateWriteError extends Error {
  readonly code = 'INDETERMINATE_WRITE'
  readonly idempotencyKey: string | undefined
  readonly masterUrl: string

  constructor(message: string, details: { cause?: unknown; idempotencyKey: string | undefined; masterUrl: string }) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.name = 'IndeterminateWriteError'
    this.idempotencyKey = details.idempotencyKey
    this.masterUrl = details.masterUrl
  }
}
