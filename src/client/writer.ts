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
 * Writes carry `redirect`, so a node that is no longer the master answers 301 instead of
 * forwarding: a forwarded write whose relay fails comes back as a 503 although the master may
 * have applied it, and the table above would then retry it.
 */
import { backoffMs, sleep } from '../shared/wait.ts'
import { CallContext } from './call-context.ts'
import { IndeterminateWriteError, SqlError, SyncTimeoutError, TandemClientError, errorFromResponse, type IndeterminateReason } from './client-errors.ts'
import { HttpFailure, type HttpResponse, type Transport } from './http-transport.ts'
import { parseJson, stringifyJson } from './json-codec.ts'
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
  const { settings, topology, transport } = connection
  const body = stringifyJson(encodeStatements(statements))
  const path = `/db/execute?redirect&blob_array${transaction ? '&transaction' : ''}${syncQuery(options, settings)}`
  const key = options.idempotencyKey
  const headers = requestHeaders(key)
  const context = new CallContext(options.timeoutMs ?? settings.timeoutMs, options.signal)
  // Set once any attempt may have been applied; only a later answer from the master clears it.
  let indeterminate: IndeterminateWriteError | undefined
  let lastError: unknown
  try {
    for (let attempt = 0; attempt < settings.attemptsMax; attempt++) {
      if (attempt > 0) await sleep(backoffMs(attempt - 1, 25, 1_000), context.signal)
      let node: string
      try {
        node = await topology.master(context.signal)
      } catch (error) {
        if (!(error instanceof TandemClientError)) throw error
        lastError = error
        continue
      }
      let response: HttpResponse
      try {
        response = await transport.send({ method: 'POST', node, path, headers, body, signal: context.signal })
      } catch (error) {
        if (!(error instanceof HttpFailure)) throw error
        topology.reportFailure(node)
        lastError = new TandemClientError('UNAVAILABLE', `the master at ${node} could not be reached: ${error.message}`, { node, cause: error.cause })
        if (!error.wasSent) continue
        const reason: IndeterminateReason = context.isDone ? context.stopReason : 'connection-lost'
        indeterminate = indeterminateError(reason, node, key, error.cause)
        if (key === undefined) throw indeterminate
        continue
      }
      const answer = interpret(response, node, transaction)
      if (answer.kind === 'retry') {
        lastError = answer.error
        if (answer.masterHint !== undefined || answer.error.code === 'NOT_MASTER') topology.redirectMaster(answer.masterHint)
        else if (!masterIsFineCodes.has(answer.error.code)) topology.reportFailure(node)
        continue
      }
      if (answer.kind === 'failed') {
        if (answer.mayBeApplied) throw indeterminateError('server-error', node, key, answer.error)
        throw indeterminate ?? answer.error
      }
      topology.reportSuccess(node)
      return settle(answer.result, session)
    }
  } catch (error) {
    if (!context.isDone || error instanceof TandemClientError) throw error
    throw indeterminate ?? context.stoppedError('the write', lastError)
  } finally {
    context.dispose()
  }
  throw indeterminate ?? lastError
}

/** 503s from a master that is still the master: back off, but do not look for another. */
const masterIsFineCodes = new Set<string>(['OVERLOADED', 'NOT_ENOUGH_REPLICAS', 'WRITE_FAILED'])

type Answer =
  | { kind: 'done'; result: Outcome }
  | { kind: 'retry'; error: TandemClientError; masterHint?: string }
  | { kind: 'failed'; error: TandemClientError; mayBeApplied: boolean }

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

function interpret(response: HttpResponse, node: string, transaction: boolean): Answer {
  const { status } = response
  if (status >= 300 && status < 400) {
    const location = response.headers['location']
    const error = new TandemClientError('NOT_MASTER', `${node} is not the master${location === undefined ? '' : `; it points to ${location}`}`, { status, node })
    return location === undefined ? { kind: 'retry', error } : { kind: 'retry', error, masterHint: new URL(location, node).origin }
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
      return { kind: 'failed', error: badResponse(node, `HTTP ${status} without results and an LSN`), mayBeApplied: true }
    }
    let results: (StatementResult | StatementFailure)[]
    try {
      results = b.results.map((r) => decodeStatementResult(r, node))
    } catch (error) {
      return { kind: 'failed', error: error as TandemClientError, mayBeApplied: true }
    }
    const outcome: Outcome = { node, status, lsn, replayed: response.headers['x-tandem-idempotent-replay'] === '1', results, transaction }
    const sync = syncStateOf(b.sync)
    if (sync !== undefined) outcome.sync = sync
    if (b.code === 'SYNC_TIMEOUT') outcome.syncTimeout = typeof b.error === 'string' ? b.error : `committed at LSN ${lsn} but not confirmed by enough replicas in time`
    return { kind: 'done', result: outcome }
  }
  const error = errorFromResponse(status, body, node)
  if (status === 421) {
    const hint = (body as { master?: unknown } | undefined)?.master
    return typeof hint === 'string' ? { kind: 'retry', error, masterHint: hint } : { kind: 'retry', error }
  }
  // Every 503 means nothing was applied.
  if (status === 503) return { kind: 'retry', error }
  // A 500 is a bug or a broken log on the master: nothing says whether the write was applied.
  return { kind: 'failed', error, mayBeApplied: status >= 500 }
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

function indeterminateError(reason: IndeterminateReason, node: string, key: string | undefined, cause: unknown): IndeterminateWriteError {
  const what = {
    timeout: 'timed out after it was sent',
    aborted: 'was aborted after it was sent',
    'connection-lost': 'lost its connection after it was sent',
    'server-error': 'failed with a server error',
  }[reason]
  const advice = key === undefined ? 'it may or may not have been applied; check before repeating it' : `it may or may not have been applied; repeating it with idempotency key '${key}' is safe`
  return new IndeterminateWriteError(`the write to ${node} ${what}: ${advice}`, { reason, idempotencyKey: key, node, cause })
}
