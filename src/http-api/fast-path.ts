/**
 * The two hottest requests without the framework, answered on the bare node:http response:
 *
 * - `GET /db/query?q=…` that this node answers itself (a replica at level none or auto, the
 *   master at none, weak or auto), with an empty body and none of the flags that change what happens
 *   (pretty, timings, min_lsn, freshness), whose statement the node knows to be cheap;
 * - `POST /db/execute` on the master, with a Content-Length within the body limit, without an
 *   Idempotency-Key, and not forwarded by a replica.
 *
 * A point read is a few µs of SQLite and a one-row write ~25 µs of the master's CPU; fastify's
 * routing, hooks, reply objects and promise chain cost 3–9 µs more per request (measured: 10–20 %
 * more requests per second). The answers are built by the routes' own functions (Answer,
 * executeAnswer, errorAnswer, readAnswer): same status, headers and bytes.
 *
 * The choice is made from the URL and headers alone, before a byte of the body is read: a read
 * that does not qualify, or that throws here (a bad level, SQL that is not a read, a node not
 * readable), returns false with nothing written, and the framework takes the request from the
 * start (reads have no side effects, so running one again there is harmless). A write that
 * qualifies is this path's to the end, errors included.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import querystring from 'fast-querystring'
import type { Logger } from '../shared/logger.ts'
import type { Answer } from './answer.ts'
import { asTandemError, errorAnswer } from './error-reply.ts'
import { executeAnswer, writeOptions } from './execute-answer.ts'
import type { NodeApi } from './node-api.ts'
import { parseQueryParams, type QueryParams } from './query-params.ts'
import { readAnswer } from './read-answer.ts'
import { decodeUtf8Strict, parseStatements } from './request-parser.ts'

type Query = Record<string, string | string[] | undefined>

/** The query parameters of `url` at `path`, or undefined when the URL is another path. */
export function queryOf(url: string | undefined, path: string): Query | undefined {
  if (url === undefined || !url.startsWith(path)) return undefined
  if (url.length === path.length) return {}
  return url[path.length] === '?' ? (querystring.parse(url.slice(path.length + 1)) as Query) : undefined
}

function send(node: NodeApi, response: ServerResponse, answer: Answer): void {
  response.writeHead(answer.status, {
    ...answer.headers,
    'x-tandem-epoch': String(node.epoch()),
    'content-length': String(Buffer.byteLength(answer.body)),
  })
  response.end(answer.body)
}

export function answerFastRead(node: NodeApi, request: IncomingMessage, response: ServerResponse): boolean {
  const length = request.headers['content-length']
  if (request.method !== 'GET' || (length !== undefined && length !== '0') || request.headers['transfer-encoding'] !== undefined) return false
  let answer: Answer
  try {
    const query = queryOf(request.url, '/db/query')
    if (query === undefined) return false
    const params = parseQueryParams(query)
    if (params.q === undefined || params.pretty || params.timings || params.minLsn !== undefined || params.freshnessMs !== undefined || params.dbTimeoutMs !== undefined) return false
    const level = params.level ?? 'weak'
    const here = level === 'none' || level === 'auto' || (level === 'weak' && node.role === 'master')
    if (!here) return false
    node.assertReadable()
    const results = node.queryJsonIfCheap([{ sql: params.q }], params.transaction, { associative: params.associative, timings: false, blobArray: params.blobArray })
    if (results === undefined) return false
    answer = readAnswer(results, node.appliedLsn(), undefined)
  } catch {
    return false
  }
  send(node, response, answer)
  return true
}

export interface FastWriteOptions {
  bodyLimitBytes: number
  logger: Logger
}

export function answerFastWrite(node: NodeApi, request: IncomingMessage, response: ServerResponse, options: FastWriteOptions): boolean {
  if (request.method !== 'POST' || node.role !== 'master') return false
  const { headers } = request
  if (headers['idempotency-key'] !== undefined || headers['x-tandem-forwarded'] !== undefined || headers['transfer-encoding'] !== undefined) return false
  const length = Number(headers['content-length'])
  if (!Number.isInteger(length) || length > options.bodyLimitBytes) return false
  let params: QueryParams
  try {
    const query = queryOf(request.url, '/db/execute')
    if (query === undefined) return false
    params = parseQueryParams(query)
  } catch {
    return false
  }
  // A queued write is answered before it runs: the framework's route does that (write-queue.ts).
  if (params.queue) return false
  // From here on this path answers the request, errors included.
  const started = params.timings ? performance.now() : 0
  const failed = (error: unknown) => send(node, response, errorAnswer(asTandemError(error, options.bodyLimitBytes, options.logger)))
  const chunks: Buffer[] = []
  request.on('data', (chunk: Buffer) => chunks.push(chunk))
  request.on('error', () => response.destroy())
  request.on('end', () => {
    let written: ReturnType<NodeApi['write']>
    try {
      // node.write throws at once when this node stopped being the master meanwhile.
      const statements = parseStatements(decodeUtf8Strict(Buffer.concat(chunks)), headers['content-type'])
      const limit = params.dbTimeoutMs === undefined ? {} : { limitMs: params.dbTimeoutMs }
      written = node.write({ statements, transaction: params.transaction, ...limit }, writeOptions(params, undefined))
    } catch (error) {
      failed(error)
      return
    }
    written.then((outcome) => send(node, response, executeAnswer(outcome, params, started)), failed)
  })
  return true
}
