/**
 * HTTP requests to nodes over undici keep-alive pools, with the one fact a write needs that
 * fetch cannot give: whether the request was handed to a connected socket. A request that
 * failed before that point (connection refused, aborted while still connecting or queued) was
 * never seen by the node and is safe to send elsewhere; one that failed after it may have been
 * applied. undici calls a dispatch handler's onConnect just before it writes the request on a
 * connected socket, and aborting from onConnect stops the write.
 *
 * Every request carries the client's credentials (HTTP Basic) and connects with its TLS options
 * (the CA of https:// nodes, a client certificate for mutual TLS): callers never add them.
 */
import { Agent, request as undiciRequest, type Dispatcher } from 'undici'
import { messageOf } from '../shared/errors.ts'
import type { Credentials, TlsOptions } from './options.ts'

export interface HttpRequest {
  method: 'GET' | 'POST' | 'DELETE'
  /** The node's base URL, e.g. http://127.0.0.1:4001. */
  node: string
  /** Path and query string. */
  path: string
  headers?: Record<string, string>
  body?: string
  signal: AbortSignal
}

export interface HttpResponse {
  status: number
  /** Lower-cased names. */
  headers: Record<string, string>
  body: string
}

/** A request that got no response. `wasSent`: the request reached a connected socket. */
export class HttpFailure extends Error {
  readonly wasSent: boolean
  readonly node: string

  constructor(node: string, wasSent: boolean, cause: unknown) {
    super(`${node}: ${messageOf(cause)}`, { cause })
    this.name = 'HttpFailure'
    this.node = node
    this.wasSent = wasSent
  }
}

/** A GET whose body is read as it arrives (an event stream). */
export interface StreamRequest {
  node: string
  path: string
  headers?: Record<string, string>
  signal: AbortSignal
  /** Fails when the response's headers take longer. */
  headersTimeoutMs: number
  /** Fails when the body is quiet this long (undici's UND_ERR_BODY_TIMEOUT). */
  bodyIdleMs: number
}

/** What the client needs of HTTP; HttpTransport is the real one. */
export interface Transport {
  send(request: HttpRequest): Promise<HttpResponse>
  stream(request: StreamRequest): Promise<Dispatcher.ResponseData>
  close(): Promise<void>
}

export interface HttpTransportOptions {
  connectionsPerNode: number
  responseBytesMax: number
  auth?: Credentials
  tls?: TlsOptions
}

export class HttpTransport implements Transport {
  private readonly agent: Agent
  /**
   * Event streams get a pool of their own: each holds its connection for as long as its job
   * runs, and a few watched jobs would otherwise take every connection writes and reads need.
   */
  private readonly streamAgent: Agent
  private readonly responseBytesMax: number
  /** Sent with every request; undefined without credentials. */
  private readonly authorization: string | undefined

  constructor(options: HttpTransportOptions) {
    const connect = { ...options.tls }
    // Deadlines come from each call's signal; undici's own timeouts stay as a backstop.
    this.agent = new Agent({ connections: options.connectionsPerNode, pipelining: 1, keepAliveTimeout: 4_000, connectTimeout: 10_000, connect })
    this.streamAgent = new Agent({ pipelining: 1, keepAliveTimeout: 4_000, connectTimeout: 10_000, connect })
    this.responseBytesMax = options.responseBytesMax
    this.authorization = options.auth === undefined ? undefined : basicAuthorization(options.auth)
  }

  stream(request: StreamRequest): Promise<Dispatcher.ResponseData> {
    return undiciRequest(new URL(request.path, request.node), {
      dispatcher: this.streamAgent,
      method: 'GET',
      headers: this.headersOf(request.headers),
      signal: request.signal,
      headersTimeout: request.headersTimeoutMs,
      bodyTimeout: request.bodyIdleMs,
    })
  }

  send(request: HttpRequest): Promise<HttpResponse> {
    const { node, signal } = request
    return new Promise<HttpResponse>((resolve, reject) => {
      let wasSent = false
      let isSettled = false
      let abortRequest: ((error?: Error) => void) | undefined
      let status = 0
      let headers: Record<string, string> = {}
      const chunks: Buffer[] = []
      let bytes = 0

      const settle = (outcome: { response: HttpResponse } | { error: unknown }) => {
        if (isSettled) return
        isSettled = true
        signal.removeEventListener('abort', onAbort)
        if ('response' in outcome) resolve(outcome.response)
        else reject(new HttpFailure(node, wasSent, outcome.error))
      }
      const onAbort = () => {
        const reason: unknown = signal.reason
        // Settle first: wasSent is final here. A request still waiting for a socket is
        // aborted by onConnect when it gets one, before a byte is written.
        settle({ error: reason })
        abortRequest?.(reason instanceof Error ? reason : new Error(String(reason)))
      }
      if (signal.aborted) return settle({ error: signal.reason })
      signal.addEventListener('abort', onAbort, { once: true })

      const handler: Dispatcher.DispatchHandlers = {
        onConnect: (abort) => {
          if (isSettled) return abort(new Error('aborted before sending'))
          abortRequest = abort
          wasSent = true
        },
        onHeaders: (statusCode, rawHeaders) => {
          if (statusCode < 200) return true
          status = statusCode
          headers = parseHeaders(rawHeaders)
          return true
        },
        onData: (chunk) => {
          bytes += chunk.length
          if (bytes > this.responseBytesMax) {
            const error = new Error(`the response is over responseBytesMax (${this.responseBytesMax} bytes)`)
            settle({ error })
            abortRequest?.(error)
            return false
          }
          chunks.push(chunk)
          return true
        },
        onComplete: () => settle({ response: { status, headers, body: Buffer.concat(chunks).toString('utf8') } }),
        onError: (error) => settle({ error }),
      }
      const url = new URL(request.path, node)
      const options: Dispatcher.DispatchOptions = {
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: request.method,
        headers: this.headersOf(request.headers),
        body: request.body ?? null,
      }
      try {
        this.agent.dispatch(options, handler)
      } catch (error) {
        settle({ error })
      }
    })
  }

  async close(): Promise<void> {
    // Streams were closed with their handles (TandemClient.close()); one left open must not hold close() up.
    await Promise.all([this.agent.close(), this.streamAgent.destroy()])
  }

  private headersOf(headers: Record<string, string> = {}): Record<string, string> {
    return this.authorization === undefined ? headers : { ...headers, authorization: this.authorization }
  }
}

/** RFC 7617: base64 of `user:password` in UTF-8. */
export function basicAuthorization(auth: Credentials): string {
  return `Basic ${Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64')}`
}

function parseHeaders(raw: Buffer[] | string[] | null): Record<string, string> {
  const headers: Record<string, string> = {}
  if (raw === null) return headers
  for (let i = 0; i + 1 < raw.length; i += 2) headers[raw[i]!.toString().toLowerCase()] = raw[i + 1]!.toString()
  return headers
}
