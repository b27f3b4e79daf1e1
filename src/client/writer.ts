/**
 * The write path: one POST /db/execute to the master, and the retry rules that keep a write from
 * being applied twice.
 *
 * | what happened                                   | applied?    | the client                          |
 * |-------------------------------------------------|-------------|-------------------------------------|
 * | 2xx                                             | yes         | returns (SYNC_TIMEOUT: throws it)   |
 * | failed before the request reached a socket     | no          | rediscovers, retries                |
 * | 301 / 421 NOT_MASTER                            | no          | follows the master named, retries   |
 * | 503 (any code)                                  | no          | backs off, rediscovers, retries     |
 * | other 4xx                                       | no          | throws the node's error             |
 * | timeout, abort or lost connection after sending | maybe       | IndeterminateWriteError; retries only with an idempotency key |
 * | 500                                             | maybe       | IndeterminateWriteError             |
 *
 * The loop that sends and retries (attempts, backoff, discovery, the deadline, what a request
 * lost before or after sending means) is `sendToMaster` in master-call.ts, shared with `/jobs`;
 * `interpret` below reads the master's answers.
 *
 * Writes carry `redirect`, so a node that is no longer the master answers 301 instead of
 * forwarding: a forwarded write whose relay fails comes back as a 503 although the master may
 * have applied it, and the table above would then retry it.
 */
import { SqlError, SyncTimeoutError, TandemClientError, errorFromResponse } from './client-errors.ts'
import type { HttpResponse, Transport } from './http-transport.ts'
import { parseJson, stringifyJson } from './json-codec.ts'
import { sendToMaster, type MasterRequest, type Verdict } from './master-call.ts'
import type { Settings } from './options.ts'
import { badResponse, decodeStatementResult, type BatchResult, type StatementFailure, type StatementResult, type SyncState } from './results.ts'
import type { Session } from './session.ts'
import { encodeStatements, type Statement } from './statements.ts'
import type { Topology } from './topology.ts'

export interface WriteOptions {
  signal?: AbortSignal
  /** This call's deadline, retries included (default: the client's timeoutMs). */
  timeoutMs?: number
  /**
   * Makes the write safe to retry: the master runs a key once and answers a repeat within its
   * idempotency window with the first outcome. 1 to 200 printable ASCII characters.
   */
  idempotencyKey?: string
  /** Replicas that must confirm the write before it is acknowledged. */
  sync?: number
  syncTimeoutMs?: number
}

export interface Connection {
  transport: Transport
  topology: Topology
  settings: Settings
}

export async function write(connection: Connection, session: Session, statements: readonly Statement[], transaction: boolean, options: WriteOptions): Promise<BatchResult> {
  const { settings } = connection
  const body = stringifyJson(encodeStatements(statements))
  const path = `/db/execute?redirect&blob_array${transaction ? '&transaction' : ''}${syncQuery(options, settings)}`
  const key = options.idempotencyKey
  const request: MasterRequest = {
    method: 'POST',
    path,
    headers: requestHeaders(key),
    body,
    // The master runs a key once and answers a repeat with the first outcome.
    isRepeatable: key !== undefined,
    idempotencyKey: key,
    timeoutMs: options.timeoutMs ?? settings.timeoutMs,
    signal: options.signal,
    what: 'the write',
  }
  const outcome = await sendToMaster(connection, request, (response, node) => interpret(response, node, transaction))
  return settle(outcome, session)
}

/** 503s from a master that is still the master: back off, but do not look for another. */
const masterIsFineCodes = new Set<string>(['OVERLOADED', 'NOT_ENOUGH_REPLICAS', 'WRITE_FAILED'])

interface Outcome {
  node: string
  status: number
  lsn: number
  replayed: boolean
  results: (StatementResult | StatementFailure)[]
  transaction: boolean
  sync?: SyncState
  syncTimeout?: string
}

/** What the master's answer to a write means, by the table at the top. */
function interpret(response: HttpResponse, node: string, transaction: boolean): Verdict<Outcome> {
  const { status } = response
  if (status >= 300 && status < 400) {
    const location = response.headers['location']
    const error = new TandemClientError('NOT_MASTER', `${node} is not the master${location === undefined ? '' : `; it points to ${location}`}`, { status, node })
    return { kind: 'not-master', error, masterHint: location === undefined ? undefined : new URL(location, node).origin }
  }
  let body: unknown
  try {
    body = parseJson(response.body)
  } catch {
    body = undefined
  }
  if (status >= 200 && status < 300) {
    const b = body as { results?: unknown; lsn?: unknown; code?: unknown; error?: unknown; sync?: unknown } | undefined
    const lsn = typeof b?.lsn === 'number' ? b.lsn : Number(response.headers['x-tandem-lsn'])
    // The master answered 2xx, so the write is committed; an answer this client cannot read
    // leaves it not knowing what was applied.
    if (b === undefined || !Array.isArray(b.results) || !Number.isSafeInteger(lsn)) {
      return { kind: 'maybe-applied', error: badResponse(node, `HTTP ${status} without results and an LSN`), mayRepeat: false }
    }
    let results: (StatementResult | StatementFailure)[]
    try {
      results = b.results.map((r) => decodeStatementResult(r, node))
    } catch (error) {
      return { kind: 'maybe-applied', error: error as TandemClientError, mayRepeat: false }
    }
    const outcome: Outcome = { node, status, lsn, replayed: response.headers['x-tandem-idempotent-replay'] === '1', results, transaction }
    const sync = syncStateOf(b.sync)
    if (sync !== undefined) outcome.sync = sync
    if (b.code === 'SYNC_TIMEOUT') outcome.syncTimeout = typeof b.error === 'string' ? b.error : `committed at LSN ${lsn} but not confirmed by enough replicas in time`
    return { kind: 'done', value: outcome }
  }
  const error = errorFromResponse(status, body, node)
  // Every 503 means nothing was applied.
  if (status === 421 || status === 503) {
    const hint = status === 421 ? (body as { master?: unknown } | undefined)?.master : undefined
    if (typeof hint === 'string') return { kind: 'not-master', error, masterHint: hint }
    if (error.code === 'NOT_MASTER') return { kind: 'not-master', error }
    return { kind: 'not-applied', error, isMasterFine: masterIsFineCodes.has(error.code) }
  }
  // A 500 is a bug or a broken log on the master: nothing says whether the write was applied.
  // Not sent again, even with an idempotency key.
  if (status >= 500) return { kind: 'maybe-applied', error, mayRepeat: false }
  return { kind: 'failed', error }
}

/** Turns a master's answer into the call's result, or the error it amounts to. */
function settle(outcome: Outcome, session: Session): BatchResult {
  const failed = outcome.results.findIndex((r) => 'error' in r)
  const rolledBack = failed >= 0 && outcome.transaction
  const isApplied = !rolledBack && outcome.results.some((r) => !('error' in r))
  if (isApplied) session.observe(outcome.lsn)
  if (outcome.syncTimeout !== undefined && isApplied) {
    throw new SyncTimeoutError(outcome.syncTimeout, {
      lsn: outcome.lsn,
      results: outcome.results,
      sync: outcome.sync ?? { required: 0, confirmed: 0 },
      node: outcome.node,
      status: outcome.status,
    })
  }
  if (failed >= 0) {
    const message = (outcome.results[failed] as StatementFailure).error
    throw new SqlError(outcome.results.length > 1 || failed > 0 ? `statement ${failed}: ${message}` : message, {
      statementIndex: failed,
      results: outcome.results,
      rolledBack,
      lsn: isApplied ? outcome.lsn : undefined,
      node: outcome.node,
    })
  }
  const result: BatchResult = { lsn: outcome.lsn, node: outcome.node, replayed: outcome.replayed, results: outcome.results as StatementResult[] }
  if (outcome.sync !== undefined) result.sync = outcome.sync
  return result
}

function requestHeaders(key: string | undefined): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (key === undefined) return headers
  if (typeof key !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(key)) {
    throw new TandemClientError('BAD_REQUEST', 'an idempotency key must be 1 to 200 printable ASCII characters without spaces')
  }
  headers['idempotency-key'] = key
  return headers
}

function syncQuery(options: WriteOptions, settings: Settings): string {
  const sync = options.sync ?? settings.sync
  const timeoutMs = options.syncTimeoutMs ?? settings.syncTimeoutMs
  let query = ''
  if (sync !== undefined) {
    if (!Number.isSafeInteger(sync) || sync < 0) throw new TandemClientError('BAD_REQUEST', `sync must be a non-negative integer, got ${sync}`)
    query += `&sync=${sync}`
  }
  if (timeoutMs !== undefined) {
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) throw new TandemClientError('BAD_REQUEST', `syncTimeoutMs must be a positive integer, got ${timeoutMs}`)
    query += `&sync_timeout=${timeoutMs}ms`
  }
  return query
}

function syncStateOf(value: unknown): SyncState | undefined {
  const v = value as { required?: unknown; confirmed?: unknown } | undefined
  if (typeof v?.required !== 'number' || typeof v.confirmed !== 'number') return undefined
  return { required: v.required, confirmed: v.confirmed }
}
