/**
 * Requests that must reach the master: SQL writes (writer.ts) and the `/jobs` endpoints. They
 * share one retry loop, `sendToMaster`, so "never apply a write twice without knowing" (DESIGN.md)
 * is written once. The loop decides what a failure to get an answer means:
 *
 * | what happened                                   | the loop                                      |
 * |-------------------------------------------------|-----------------------------------------------|
 * | no master known                                 | backs off, rediscovers, retries               |
 * | discovery refused (401, 403)                    | throws it: every node would say the same      |
 * | failed before the request reached a socket     | reports the master, retries                   |
 * | lost after sending (timeout, abort, connection) | a GET retries; a POST is an IndeterminateWriteError, sent again only when `isRepeatable` |
 *
 * and the caller's `interpret` decides what an answer means (a `Verdict`): writer.ts has the
 * write path's table, `callMaster` below the one for `/jobs`:
 *
 * | what happened                                   | the client                                    |
 * |-------------------------------------------------|-----------------------------------------------|
 * | 2xx                                             | returns the status and body                   |
 * | 301 / 421 NOT_MASTER                            | follows the master named, retries             |
 * | 503 (any code)                                  | backs off, rediscovers, retries               |
 * | other 4xx                                       | throws the node's error (JOB_NOT_FOUND...)    |
 * | a 5xx other than 503                            | a GET throws; a POST is an IndeterminateWriteError, retried only when `isRepeatable` (500: never) |
 *
 * A POST is `isRepeatable` when sending it twice does what sending it once does: a write or
 * `POST /jobs` with an idempotency key (the master answers the repeat with the first outcome).
 */
import { backoffMs, sleep } from '../shared/wait.ts'
import { CallContext } from './call-context.ts'
import { IndeterminateWriteError, TandemClientError, errorFromResponse, isAccessRefusal, type IndeterminateReason } from './client-errors.ts'
import { HttpFailure, type HttpResponse } from './http-transport.ts'
import { parseJson } from './json-codec.ts'
import type { Connection } from './writer.ts'

export interface MasterCall {
  method: 'GET' | 'POST' | 'DELETE'
  /** Path and query string, e.g. `/jobs/j_1/wait?timeout=30000ms`. */
  path: string
  body?: string
  /** A POST that is safe to send again after it may have reached the master. */
  isRepeatable?: boolean
  /** Named in an IndeterminateWriteError, so the caller knows a repeat is safe. */
  idempotencyKey?: string | undefined
  /** This call's deadline, retries included. */
  timeoutMs: number
  signal?: AbortSignal | undefined
  /** The call as a noun, for error messages: 'the job submission'. */
  what: string
}

/** A call as `sendToMaster` sends it. */
export interface MasterRequest extends MasterCall {
  headers: Record<string, string>
  /**
   * Once the call is stopped (its deadline or the caller's abort), a failure of a request that
   * cannot have been applied ends the call at once and the master is not reported (the jobs
   * API). Without it (the write path) the master is reported, the failure becomes the last one,
   * and the call ends at the next backoff: TIMEOUT or ABORTED naming it, or that failure after
   * the last attempt.
   */
  stopsQuietly?: boolean
}

/** What an answer from the master means, as the caller's `interpret` reads it. */
export type Verdict<T> =
  /** The master's answer: the call returns `value`. */
  | { kind: 'done'; value: T }
  /** Not applied, and the node is not the master: follow `masterHint` (or rediscover), retry. */
  | { kind: 'not-master'; error: TandemClientError; masterHint?: string | undefined }
  /** Not applied: back off and retry; the node is reported unless it is still fine as the master. */
  | { kind: 'not-applied'; error: TandemClientError; isMasterFine: boolean }
  /** May have been applied: an IndeterminateWriteError; a repeatable call is sent again only when `mayRepeat`. */
  | { kind: 'maybe-applied'; error: TandemClientError; mayRepeat: boolean }
  /** Not applied, and a retry cannot help: the node's error (or the IndeterminateWriteError of an earlier attempt). */
  | { kind: 'failed'; error: TandemClientError }

export interface MasterAnswer {
  status: number
  body: unknown
  node: string
}

/** A `/jobs` request: JSON in and out, by the table above. */
export async function callMaster(connection: Connection, call: MasterCall): Promise<MasterAnswer> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (call.body !== undefined) headers['content-type'] = 'application/json'
  const isGet = call.method === 'GET'
  return sendToMaster(connection, { ...call, headers, stopsQuietly: true }, (response, node) => interpretJson(response, node, isGet))
}

/** The retry loop every request to the master runs: attempts, backoff, discovery, deadline. */
export async function sendToMaster<T>(connection: Connection, request: MasterRequest, interpret: (response: HttpResponse, node: string) => Verdict<T>): Promise<T> {
  const { settings, topology, transport } = connection
  const context = new CallContext(request.timeoutMs, request.signal)
  // Set once a POST may have been applied; only a later answer from the master clears it.
  let indeterminate: IndeterminateWriteError | undefined
  let lastError: unknown
  try {
    for (let attempt = 0; attempt < settings.attemptsMax; attempt++) {
      if (attempt > 0) await sleep(backoffMs(attempt - 1, 25, 1_000), context.signal)
      let node: string
      try {
        node = await topology.master(context.signal)
      } catch (error) {
        if (!(error instanceof TandemClientError) || isAccessRefusal(error)) throw error
        lastError = error
        continue
      }
      let response: HttpResponse
      try {
        const sent = { method: request.method, node, path: request.path, headers: request.headers, signal: context.signal }
        response = await transport.send(request.body === undefined ? sent : { ...sent, body: request.body })
      } catch (error) {
        if (!(error instanceof HttpFailure)) throw error
        const isSafe = request.method === 'GET' || !error.wasSent
        if (context.isDone && isSafe && request.stopsQuietly === true) throw error
        topology.reportFailure(node)
        lastError = new TandemClientError('UNAVAILABLE', `the master at ${node} could not be reached: ${error.message}`, { node, cause: error.cause })
        if (isSafe) continue
        indeterminate = indeterminateError(request, context.isDone ? context.stopReason : 'connection-lost', node, error.cause)
        if (request.isRepeatable !== true) throw indeterminate
        continue
      }
      const verdict = interpret(response, node)
      if (verdict.kind === 'done') {
        topology.reportSuccess(node)
        return verdict.value
      }
      if (verdict.kind === 'failed') throw indeterminate ?? verdict.error
      lastError = verdict.error
      if (verdict.kind === 'not-master') {
        topology.redirectMaster(verdict.masterHint)
      } else if (verdict.kind === 'not-applied') {
        if (!verdict.isMasterFine) topology.reportFailure(node)
      } else {
        indeterminate = indeterminateError(request, 'server-error', node, verdict.error)
        if (request.isRepeatable !== true || !verdict.mayRepeat) throw indeterminate
      }
    }
  } catch (error) {
    if (!context.isDone || error instanceof TandemClientError) throw error
    throw indeterminate ?? context.stoppedError(request.what, lastError)
  } finally {
    context.dispose()
  }
  throw indeterminate ?? lastError
}

/** A `/jobs` answer, by the second table above. */
function interpretJson(response: HttpResponse, node: string, isGet: boolean): Verdict<MasterAnswer> {
  const { status } = response
  if (status >= 300 && status < 400) {
    const location = response.headers['location']
    const error = new TandemClientError('NOT_MASTER', `${node} is not the master`, { status, node })
    return { kind: 'not-master', error, masterHint: location === undefined ? undefined : new URL(location, node).origin }
  }
  const body = bodyOf(response)
  if (status >= 200 && status < 300) return { kind: 'done', value: { status, body, node } }
  const error = errorFromResponse(status, body, node)
  if (status === 421) {
    const hint = (body as { master?: unknown } | undefined)?.master
    return { kind: 'not-master', error, masterHint: typeof hint === 'string' ? hint : undefined }
  }
  // Every 503 means nothing was done.
  if (status === 503) return { kind: 'not-applied', error, isMasterFine: false }
  if (status >= 500 && !isGet) return { kind: 'maybe-applied', error, mayRepeat: status !== 500 }
  return { kind: 'failed', error }
}

function bodyOf(response: HttpResponse): unknown {
  try {
    return parseJson(response.body)
  } catch {
    return undefined
  }
}

function indeterminateError(call: MasterCall, reason: IndeterminateReason, node: string, cause: unknown): IndeterminateWriteError {
  const what = {
    timeout: 'timed out after it was sent',
    aborted: 'was aborted after it was sent',
    'connection-lost': 'lost its connection after it was sent',
    'server-error': 'failed with a server error',
  }[reason]
  const key = call.idempotencyKey
  const advice = key === undefined ? 'it may or may not have been applied; check before repeating it' : `it may or may not have been applied; repeating it with idempotency key '${key}' is safe`
  return new IndeterminateWriteError(`${call.what} to ${node} ${what}: ${advice}`, { reason, idempotencyKey: key, node, cause })
}
