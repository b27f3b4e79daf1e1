/**
 * The hottest request without the framework: `GET /db/query?q=…` that this node answers
 * itself (a replica at level none or auto, the master at none, weak or auto), with no body and
 * none of the flags that change what happens (pretty, timings, min_lsn, freshness), whose
 * statement the node knows to be cheap. Such a read is a few µs of SQLite; fastify's routing,
 * hooks and reply objects cost ~3 µs more of the main thread on top, which a replica filled with
 * point reads spends on nothing else (measured: 10 % more reads per second).
 *
 * Same bytes, same headers, same checks as the route in server.ts. Anything else, and anything
 * that throws here (a refused level, SQL that is not a read, a node not readable), returns false
 * before a byte is written: the framework then takes the request from the start and answers it,
 * errors included. Reads have no side effects, so running one again there is harmless.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import querystring from 'fast-querystring'
import type { NodeApi } from './node-api.ts'
import { parseQueryParams } from './query-params.ts'
import { readAnswerBody } from './read-answer.ts'

const prefix = '/db/query?'

export function answerFastRead(node: NodeApi, request: IncomingMessage, response: ServerResponse): boolean {
  const url = request.url
  if (request.method !== 'GET' || url === undefined || !url.startsWith(prefix)) return false
  if (request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined) return false
  let body: string
  try {
    const params = parseQueryParams(querystring.parse(url.slice(prefix.length)) as Record<string, string | string[] | undefined>)
    if (params.q === undefined || params.pretty || params.timings || params.minLsn !== undefined || params.freshnessMs !== undefined) return false
    const level = params.level ?? 'weak'
    const here = level === 'none' || level === 'auto' || (level === 'weak' && node.role === 'master')
    if (!here) return false
    const results = node.queryJsonIfCheap([{ sql: params.q }], params.transaction, { associative: params.associative, timings: false, blobArray: params.blobArray })
    if (results === undefined) return false
    body = readAnswerBody(results, undefined)
  } catch {
    return false
  }
  // The header order of the framework's answer (the route's x-tandem-lsn, then its hook's epoch).
  response.writeHead(200, {
    'x-tandem-lsn': String(node.appliedLsn()),
    'content-type': 'application/json; charset=utf-8',
    'x-tandem-epoch': String(node.epoch()),
    'content-length': Buffer.byteLength(body),
  })
  response.end(body)
  return true
}
