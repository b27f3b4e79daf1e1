/**
 * The read path: POST /db/query to a replica (`level=none`, local) or to the master
 * (`level=weak`). With session consistency every read carries `min_lsn = session.lsn`, so the
 * serving node answers only once it has applied everything the session has seen; the node's
 * X-Tandem-Lsn then raises the session, which keeps later reads monotonic on any node.
 *
 * Reads are safe to repeat: a node that fails (connection error, any 503 such as
 * MIN_LSN_TIMEOUT) is cooled down and the next node in the topology's order is tried, then the
 * master, then the whole order again after a backoff, until the call's attempts or deadline run
 * out. A 4xx or a SQL error is the answer and is thrown.
 */
import { backoffMs, sleep } from '../shared/wait.ts'
import { CallContext } from './call-context.ts'
import { SqlError, TandemClientError, errorFromResponse, isAccessRefusal } from './client-errors.ts'
import { HttpFailure, type HttpResponse } from './http-transport.ts'
import { parseJson, stringifyJson } from './json-codec.ts'
import type { Consistency, ReadTarget } from './options.ts'
import { badResponse, decodeRows, makeRows, textOf, type Rows } from './results.ts'
import type { Session } from './session.ts'
import { encodeStatements, type Statement } from './statements.ts'
import { normalizeUrl } from './topology.ts'
import type { Connection } from './writer.ts'

export interface QueryOptions {
  signal?: AbortSignal
  /** This call's deadline, retries included (default: the client's timeoutMs). */
  timeoutMs?: number
  /** Overrides the client's consistency for this read. */
  consistency?: Consistency
  /** Overrides the client's read target for this read. */
  reads?: ReadTarget
  /** Read on this node and no other (its URL). */
  node?: string
  /** Read at least this LSN (an LSN learned elsewhere); combined with the session's. */
  minLsn?: number
}

export async function read<R>(connection: Connection, session: Session, statement: Statement, options: QueryOptions): Promise<Rows<R>> {
  const { settings, topology, transport } = connection
  const body = stringifyJson(encodeStatements([statement]))
  const consistency = options.consistency ?? settings.consistency
  const target = options.reads ?? settings.reads
  const pinned = options.node === undefined ? undefined : normalizeUrl(options.node)
  if (options.minLsn !== undefined && (!Number.isSafeInteger(options.minLsn) || options.minLsn < 0)) {
    throw new TandemClientError('BAD_REQUEST', `minLsn must be a non-negative integer, got ${options.minLsn}`)
  }
  const context = new CallContext(options.timeoutMs ?? settings.timeoutMs, options.signal)
  let lastError: unknown
  try {
    for (let attempt = 0; attempt < settings.attemptsMax; ) {
      if (attempt > 0) await sleep(backoffMs(attempt - 1, 25, 1_000), context.signal)
      let order: string[]
      try {
        order = pinned !== undefined ? [pinned] : target === 'master' ? [await topology.master(context.signal)] : topology.readOrder('replicas')
        if (order.length === 0) order = [await topology.master(context.signal)]
      } catch (error) {
        if (!(error instanceof TandemClientError) || isAccessRefusal(error)) throw error
        lastError = error
        attempt++
        continue
      }
      for (const node of order) {
        if (attempt++ >= settings.attemptsMax) break
        const toMaster = pinned === undefined && target === 'master'
        const minLsn = Math.max(consistency === 'session' ? session.lsn : 0, options.minLsn ?? 0)
        const waitMs = Math.max(1, Math.min(settings.minLsnTimeoutMs, Math.floor(context.remainingMs())))
        const path = `/db/query?${toMaster ? 'level=weak&redirect' : 'level=none'}&blob_array${minLsn > 0 ? `&min_lsn=${minLsn}&min_lsn_timeout=${waitMs}ms` : ''}`
        let response: HttpResponse
        try {
          response = await transport.send({ method: 'POST', node, path, headers: { 'content-type': 'application/json' }, body, signal: context.signal })
        } catch (error) {
          if (!(error instanceof HttpFailure)) throw error
          if (context.isDone) throw error
          topology.reportFailure(node)
          lastError = new TandemClientError('UNAVAILABLE', `${node} could not be reached: ${error.message}`, { node, cause: error.cause })
          continue
        }
        const answer = interpret<R>(response, node)
        if ('rows' in answer) {
          topology.reportSuccess(node)
          session.observe(answer.rows.lsn)
          return answer.rows
        }
        lastError = answer.error
        if (!answer.isRetryable) throw answer.error
        if (answer.masterHint !== undefined || answer.error.code === 'NOT_MASTER') {
          topology.redirectMaster(answer.masterHint)
          break
        }
        topology.reportFailure(node)
      }
    }
  } catch (error) {
    if (!context.isDone || error instanceof TandemClientError) throw error
    throw context.stoppedError('the read', lastError)
  } finally {
    context.dispose()
  }
  throw lastError
}

type Answer<R> = { rows: Rows<R> } | { error: TandemClientError; isRetryable: boolean; masterHint?: string }

function interpret<R>(response: HttpResponse, node: string): Answer<R> {
  const { status } = response
  if (status >= 300 && status < 400) {
    const location = response.headers['location']
    const error = new TandemClientError('NOT_MASTER', `${node} is not the master`, { status, node })
    return location === undefined ? { error, isRetryable: true } : { error, isRetryable: true, masterHint: new URL(location, node).origin }
  }
  let body: unknown
  try {
    body = parseJson(response.body)
  } catch {
    body = undefined
  }
  if (status === 200) {
    const results = (body as { results?: unknown } | undefined)?.results
    const lsn = Number(response.headers['x-tandem-lsn'])
    if (!Array.isArray(results) || results.length !== 1 || !Number.isSafeInteger(lsn)) {
      return { error: badResponse(node, 'a read answered without one result and X-Tandem-Lsn'), isRetryable: false }
    }
    const first = results[0] as { error?: unknown }
    if (first.error !== undefined) {
      const message = textOf(first.error)
      return { error: new SqlError(message, { statementIndex: 0, results: [{ error: message }], rolledBack: false, lsn: undefined, node }), isRetryable: false }
    }
    const { rows, columns, types } = decodeRows(first, node)
    return { rows: makeRows<R>(rows, { columns, types, lsn, node }) }
  }
  const error = errorFromResponse(status, body, node)
  if (status === 421) {
    const hint = (body as { master?: unknown } | undefined)?.master
    return typeof hint === 'string' ? { error, isRetryable: true, masterHint: hint } : { error, isRetryable: true }
  }
  return { error, isRetryable: status === 503 }
}
