/**
 * One JSON request to the master that is not a SQL write: the `/jobs` endpoints. The retry
 * rules are the write path's (see writer.ts), applied per request:
 *
 * | what happened                                   | the client                                    |
 * |-------------------------------------------------|-----------------------------------------------|
 * | 2xx                                             | returns the status and body                   |
 * | failed before the request reached a socket     | rediscovers, retries                          |
 * | 301 / 421 NOT_MASTER                            | follows the master named, retries             |
 * | 503 (any code)                                  | backs off, rediscovers, retries               |
 * | other 4xx                                       | throws the node's error (JOB_NOT_FOUND...)    |
 * | lost after sending, or a 5xx other than 503     | a GET retries (500: throws); a POST is an IndeterminateWriteError, retried only when `isRepeatable` |
 *
 * A POST is `isRepeatable` when sending it twice does what sending it once does: `POST /jobs`
 * with an idempotency key (the master answers the repeat with the first job).
 */
import { backoffMs, sleep } from '../shared/wait.ts'
import { CallContext } from './call-context.ts'
import { IndeterminateWriteError, TandemClientError, errorFromResponse, type IndeterminateReason } from './client-errors.ts'
import { HttpFailure, type HttpResponse } from './http-transport.ts'
import { parseJson } from './json-codec.ts'
import type { Connection } from './writer.ts'

export interface MasterCall {
  method: 'GET' | 'POST'
  /** Path and query string, e.g. `/jobs/j_1/wait?timeout=30000ms`. */
  path: string
  body?: string
  /** A POST that is safe to send again after it may have reached the master. */
  isRepeatable?: boolean
  /** Named in an IndeterminateWriteError, so the caller knows a repeat is safe. */
  idempotencyKey?: string
  /** This call's deadline, retries included. */
  timeoutMs: number
  signal?: AbortSignal | undefined
  /** The call as a noun, for error messages: 'the job submission'. */
  what: string
}

export interface MasterAnswer {
  status: number
  body: unknown
  node: string
}

export async function callMaster(connection: Connection, call: MasterCall): Promise<MasterAnswer> {
  const { settings, topology, transport } = connection
  const isGet = call.method === 'GET'
  const headers: Record<string, string> = { accept: 'application/json' }
  if (call.body !== undefined) headers['content-type'] = 'application/json'
  const context = new CallContext(call.timeoutMs, call.signal)
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
        if (!(error instanceof TandemClientError)) throw error
        lastError = error
        continue
      }
      let response: HttpResponse
      try {
        const request = { method: call.method, node, path: call.path, headers, signal: context.signal }
        response = await transport.send(call.body === undefined ? request : { ...request, body: call.body })
      } catch (error) {
        if (!(error instanceof HttpFailure)) throw error
        const isSafe = isGet || !error.wasSent
        if (context.isDone && isSafe) throw error
        topology.reportFailure(node)
        lastError = new TandemClientError('UNAVAILABLE', `the master at ${node} could not be reached: ${error.message}`, { node, cause: error.cause })
        if (isSafe) continue
        indeterminate = indeterminateError(call, context.isDone ? context.stopReason : 'connection-lost', node, error.cause)
        if (call.isRepeatable !== true) throw indeterminate
        continue
      }
      const { status } = response
      if (status >= 300 && status < 400) {
        const location = response.headers['location']
        lastError = new TandemClientError('NOT_MASTER', `${node} is not the master`, { status, node })
        topology.redirectMaster(location === undefined ? undefined : new URL(location, node).origin)
        continue
      }
      const body = bodyOf(response)
      if (status >= 200 && status < 300) {
        topology.reportSuccess(node)
        return { status, body, node }
      }
      const error = errorFromResponse(status, body, node)
      lastError = error
      if (status === 421) {
        const hint = (body as { master?: unknown } | undefined)?.master
        topology.redirectMaster(typeof hint === 'string' ? hint : undefined)
        continue
      }
      // Every 503 means nothing was done.
      if (status === 503) {
        topology.reportFailure(node)
        continue
      }
      if (status >= 500 && !isGet) {
        indeterminate = indeterminateError(call, 'server-error', node, error)
        if (call.isRepeatable !== true || status === 500) throw indeterminate
        continue
      }
      throw isGet ? error : (indeterminate ?? error)
    }
  } catch (error) {
    if (!context.isDone || error instanceof TandemClientError) throw error
    throw indeterminate ?? context.stoppedError(call.what, lastError)
  } finally {
    context.dispose()
  }
  throw indeterminate ?? lastError
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
