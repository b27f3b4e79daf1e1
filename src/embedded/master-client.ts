/**
 * The embedded replica's line to its master over the HTTP API: writes as rqlite bodies to
 * `POST /db/execute`, and the master's newest LSN from `GET /status`. One keep-alive pool.
 *
 * A write's caller must know whether it was applied, so every outcome is classified, with the
 * same rules and codes as the client library (src/client/DESIGN.md):
 *
 * | what happened                                        | applied? | reported as                         |
 * |------------------------------------------------------|----------|-------------------------------------|
 * | 2xx                                                  | yes      | the results (SQL errors: SqlError)  |
 * | 2xx with SYNC_TIMEOUT                                | yes      | TandemError SYNC_TIMEOUT            |
 * | the connection was never made (refused, no host)     | no       | TandemError NO_MASTER               |
 * | 4xx, 503 with the master's code                      | no       | TandemError with that code          |
 * | 301 (the URL is a replica: writes are sent with `redirect`) | no | TandemError NOT_MASTER             |
 * | sent, then no answer (lost connection, timeout), or a 500 | maybe | IndeterminateWriteError; with an idempotency key, first retried with it |
 *
 * Writes carry `redirect` so that a replica answers 301 rather than forwarding: a forwarded write
 * whose relay fails comes back as a 503, which would claim "nothing applied" when the master may
 * have applied it.
 */
import { Pool } from 'undici'
import { TandemError, codes, messageOf, type ErrorCode } from '../shared/errors.ts'
import { backoffMs, sleep } from '../shared/wait.ts'
import { parseJson, stringifyJson } from '../http-api/json.ts'
import type { SqlParams, SqlValue } from '../storage/index.ts'
import { IndeterminateWriteError } from './errors.ts'

/** One statement of a write: SQL text and its positional (`?`) or named (`:name`) parameters. */
export interface WriteStatement {
  sql: string
  params?: SqlParams
}

export type OutputRow = Record<string, SqlValue>

/** What one statement of a write did, exactly as the master reported it. */
export type StatementOutcome = { rowsAffected: number; lastInsertId: number | bigint; rows?: OutputRow[] } | { error: string }

export interface WriteOptions {
  /** All statements apply or none does. */
  transaction: boolean
  /** 1 to 200 printable ASCII characters: the master runs the request once per key. */
  idempotencyKey?: string
  /** Replicas that must confirm the write before the master acknowledges it. */
  sync?: number
  syncTimeoutMs?: number
}

export interface WriteReply {
  results: StatementOutcome[]
  /** The master's LSN after this write (its own entry, or the newest one if it changed nothing). */
  lsn: number
  /** The master answered from an earlier run of the same idempotency key. */
  replayed: boolean
  sync?: { required: number; confirmed: number }
  /** Set when the master committed the write but too few replicas confirmed it in time. */
  syncTimeout?: string
}

/** Error codes of a connection that was never made: the request cannot have reached the master. */
const notDeliveredCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT'])

/** Attempts of one write with an idempotency key whose answers were lost (the same key each time). */
const writeAttemptsMax = 4

export class MasterClient {
  /** The master's URL without a trailing slash. */
  readonly url: string
  private readonly pool: Pool
  /** A path the master is served under (behind a proxy), '' usually. */
  private readonly prefix: string
  private readonly requestTimeoutMs: number

  constructor(url: string, requestTimeoutMs: number) {
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch (error) {
      throw new TandemError('BAD_REQUEST', `the master URL ${JSON.stringify(url)} is not a URL`, { cause: error })
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new TandemError('BAD_REQUEST', `the master URL must be http:// or https://, not ${JSON.stringify(url)}`)
    }
    this.prefix = parsed.pathname.replace(/\/+$/, '')
    this.url = `${parsed.origin}${this.prefix}`
    this.requestTimeoutMs = requestTimeoutMs
    this.pool = new Pool(parsed.origin, { connections: 16, pipelining: 1, keepAliveTimeout: 4_000, connectTimeout: 10_000 })
  }

  /** Sends one write request; see the table above for what it resolves or throws. */
  async execute(statements: readonly WriteStatement[], options: WriteOptions): Promise<WriteReply> {
    const body = stringifyJson(statements.map(toRqliteStatement))
    const key = options.idempotencyKey
    if (key !== undefined && !/^[\x21-\x7e]{1,200}$/.test(key)) throw new TandemError('BAD_REQUEST', 'an idempotency key is 1 to 200 printable ASCII characters without spaces')
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (key !== undefined) headers['idempotency-key'] = key
    // Without a key, a write that may have been applied is never sent again.
    const attemptsMax = key === undefined ? 1 : writeAttemptsMax
    const path = `${this.prefix}/db/execute?redirect&blob_array${options.transaction ? '&transaction' : ''}${syncQuery(options)}`
    const deadline = Date.now() + this.requestTimeoutMs
    // Set once an attempt may have been applied; only an answer from the master clears it.
    let maybeApplied: unknown
    let lastError: unknown
    for (let attempt = 0; attempt < attemptsMax; attempt++) {
      if (attempt > 0) await sleep(Math.min(backoffMs(attempt - 1, 50, 1000), Math.max(0, deadline - Date.now())))
      const remainingMs = deadline - Date.now()
      if (remainingMs <= 0) break
      let status: number
      let location: string | undefined
      let replayed = false
      let text: string
      try {
        const response = await this.pool.request({
          method: 'POST',
          path,
          headers,
          body,
          headersTimeout: remainingMs,
          bodyTimeout: remainingMs,
        })
        status = response.statusCode
        const header = response.headers['location']
        location = typeof header === 'string' ? header : undefined
        replayed = response.headers['x-tandem-idempotent-replay'] === '1'
        text = await response.body.text()
      } catch (error) {
        lastError = error
        if (isNotDelivered(error)) {
          if (maybeApplied === undefined) throw this.unreachable(error)
        } else {
          maybeApplied = error
        }
        continue
      }
      const reply = parseBody(text)
      if (status >= 200 && status < 300 && isWriteReply(reply)) return toWriteReply(reply, replayed)
      if (status === 301) {
        throw new TandemError('NOT_MASTER', `${this.url} is a replica${location === undefined ? '' : `; its master is ${location}`}: open the embedded replica on the master's URL`, { masterUrl: location })
      }
      const error = this.errorOf(status, reply, text)
      if (error !== undefined && status === 503) {
        // Nothing of this attempt was applied; an earlier lost one may have been, so try again.
        if (maybeApplied === undefined) throw error
        lastError = error
        continue
      }
      if (error !== undefined && status < 500) throw error
      // A 500 (a bug, a broken log) or an answer without the master's code: it says nothing of
      // whether the write was applied.
      maybeApplied = error ?? new Error(`HTTP ${status}: ${text.slice(0, 200)}`)
      lastError = maybeApplied
    }
    if (maybeApplied === undefined) throw this.unreachable(lastError)
    const advice = key === undefined ? 'check before repeating it, or send writes with an idempotencyKey' : `repeating it with idempotency key '${key}' is safe`
    throw new IndeterminateWriteError(
      `the write was sent to the master at ${this.url} and no answer settled it (${messageOf(lastError)}); it may or may not have been applied: ${advice}`,
      { cause: maybeApplied, idempotencyKey: key, masterUrl: this.url },
    )
  }

  /** The master's newest LSN. */
  async lsn(timeoutMs: number): Promise<number> {
    let status: number
    let text: string
    try {
      const response = await this.pool.request({ method: 'GET', path: `${this.prefix}/status`, headersTimeout: timeoutMs, bodyTimeout: timeoutMs })
      status = response.statusCode
      text = await response.body.text()
    } catch (error) {
      throw this.unreachable(error)
    }
    const body = parseBody(text) as { role?: unknown; position?: { lsn?: unknown } } | undefined
    const lsn = body?.position?.lsn
    if (status !== 200 || typeof lsn !== 'number') {
      throw this.errorOf(status, body, text) ?? new TandemError('NO_MASTER', `the master at ${this.url} answered GET /status with HTTP ${status}: ${text.slice(0, 200)}`, { masterUrl: this.url })
    }
    if (body?.role !== 'master') throw new TandemError('NOT_MASTER', `${this.url} is a ${String(body?.role)}, not the master`, { masterUrl: this.url })
    return lsn
  }

  close(): Promise<void> {
    return this.pool.close()
  }

  private unreachable(error: unknown): TandemError {
    return new TandemError('NO_MASTER', `the master at ${this.url} is not reachable: ${messageOf(error)}`, { cause: error, masterUrl: this.url })
  }

  /** The master's error body as a TandemError with its code; undefined if it is not one. */
  private errorOf(status: number, body: unknown, text: string): TandemError | undefined {
    if (typeof body !== 'object' || body === null) return undefined
    const { code, error, details } = body as { code?: unknown; error?: unknown; details?: unknown }
    if (typeof code !== 'string' || !(code in codes)) return undefined
    const message = typeof error === 'string' ? error : text.slice(0, 200)
    const extra = typeof details === 'object' && details !== null ? (details as Record<string, unknown>) : {}
    return new TandemError(code as ErrorCode, message, { ...extra, status, masterUrl: this.url })
  }
}

function isNotDelivered(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && notDeliveredCodes.has(code)) return true
  }
  return false
}

function parseBody(text: string): unknown {
  try {
    return parseJson(text)
  } catch {
    return undefined
  }
}

function syncQuery(options: WriteOptions): string {
  let query = ''
  if (options.sync !== undefined) {
    if (!Number.isSafeInteger(options.sync) || options.sync < 0) throw new TandemError('BAD_REQUEST', `sync must be a non-negative integer, not ${options.sync}`)
    query += `&sync=${options.sync}`
  }
  if (options.syncTimeoutMs !== undefined) {
    if (!Number.isSafeInteger(options.syncTimeoutMs) || options.syncTimeoutMs <= 0) throw new TandemError('BAD_REQUEST', `syncTimeoutMs must be a positive integer, not ${options.syncTimeoutMs}`)
    query += `&sync_timeout=${options.syncTimeoutMs}ms`
  }
  return query
}

interface RqliteResult {
  last_insert_id?: number | bigint
  rows_affected?: number
  error?: string
  columns?: string[]
  types?: string[]
  values?: unknown[][]
}

interface RqliteWriteReply {
  results: RqliteResult[]
  lsn: number
  code?: string
  error?: string
  sync?: { required: number; confirmed: number }
}

function isWriteReply(body: unknown): body is RqliteWriteReply {
  if (typeof body !== 'object' || body === null) return false
  const { results, lsn } = body as Partial<RqliteWriteReply>
  return Array.isArray(results) && typeof lsn === 'number'
}

function toWriteReply(reply: RqliteWriteReply, replayed: boolean): WriteReply {
  const out: WriteReply = { results: reply.results.map(toOutcome), lsn: reply.lsn, replayed }
  if (reply.sync !== undefined) out.sync = reply.sync
  if (reply.code === 'SYNC_TIMEOUT') out.syncTimeout = reply.error ?? `committed at LSN ${reply.lsn} but not confirmed by enough replicas in time`
  return out
}

function toOutcome(result: RqliteResult): StatementOutcome {
  if (typeof result.error === 'string') return { error: result.error }
  const outcome: StatementOutcome = { rowsAffected: result.rows_affected ?? 0, lastInsertId: result.last_insert_id ?? 0 }
  // RETURNING rows; BLOBs come as byte arrays (blob_array), the one JSON form text cannot take.
  if (Array.isArray(result.columns)) {
    const columns = result.columns
    outcome.rows = (result.values ?? []).map((values) => {
      const row: OutputRow = {}
      columns.forEach((column, i) => {
        const value = values[i]
        row[column] = Array.isArray(value) ? Uint8Array.from(value as number[]) : (value as SqlValue)
      })
      return row
    })
  }
  return outcome
}

/** A statement in rqlite's body form: `["SQL"]`, `["SQL ?", 1]` or `["SQL :a", {"a": 1}]`. */
function toRqliteStatement(statement: WriteStatement, index: number): unknown {
  const { sql, params } = statement
  if (typeof sql !== 'string' || sql.trim() === '') throw new TandemError('BAD_REQUEST', `statement ${index} has no SQL text`)
  if (params === undefined) return [sql]
  if (Array.isArray(params)) return [sql, ...params.map((value: SqlValue, i) => toRqliteValue(value, index, String(i + 1)))]
  if (typeof params !== 'object' || params === null) throw new TandemError('BAD_REQUEST', `the parameters of statement ${index} must be an array or an object`)
  const named: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(params as Readonly<Record<string, SqlValue>>)) named[name] = toRqliteValue(value, index, name)
  return [sql, named]
}

function toRqliteValue(value: unknown, index: number, name: string): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'bigint') return value
  if (typeof value === 'boolean') return value ? 1 : 0
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TandemError('BAD_REQUEST', `parameter ${name} of statement ${index} is not a finite number`)
    return value
  }
  // rqlite's BLOB form: two hex digits a byte, half the size of its byte-array form.
  if (value instanceof Uint8Array) return `x'${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}'`
  throw new TandemError('BAD_REQUEST', `parameter ${name} of statement ${index} has an unsupported type: use null, a boolean, a number, a bigint, a string or a Uint8Array`)
}
