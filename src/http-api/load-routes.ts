/**
 * POST /db/load (rqlite's): a SQLite database file replaces the master's database, or SQL text
 * as sqlite3 .dump writes it runs on it; either way every replica ends with the master's bytes
 * (master/database-load.ts). The body streams to a file beside the database, up to
 * --load-limit-bytes, and is removed after. Needs the `load` permission (the gate checks it).
 */
import { createWriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Transform } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { TandemError } from '../shared/errors.ts'
import type { NodeApi } from './node-api.ts'
import { parseQueryParams, type QueryParams } from './query-params.ts'
import { executeAnswer, writeOptions } from './execute-answer.ts'
import { sendAnswer } from './answer.ts'
import { decodeUtf8Strict } from './request-parser.ts'
import { loadSourceOf } from '../master/database-load.ts'

export interface LoadRouteOptions {
  /** Where an uploaded body is kept while it loads (the data directory: same disk as the database). */
  loadDir: string
  loadLimitBytes: number
  toMaster: (request: FastifyRequest, reply: FastifyReply, params: QueryParams) => unknown
}

type Query = Record<string, string | string[] | undefined>

/** Registers the route in a context of its own: there the body is a stream of bytes, not the UTF-8 text every other route takes. */
export function registerLoadRoutes(app: Pick<FastifyInstance, 'register'>, node: NodeApi, options: LoadRouteOptions): void {
  // One load at a time: each holds a body of up to the limit on disk, and they replace each other anyway.
  let loading = false
  void app.register((scope, _options, done) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload))
    scope.post('/db/load', async (request, reply) => {
      const params = parseQueryParams(request.query as Query)
      if (node.role !== 'master') {
        ;(request.body as Readable | undefined)?.resume()
        // A replica does not relay a body of up to --load-limit-bytes: it says where the master is.
        if (params.redirect) return options.toMaster(request, reply, params)
        throw new TandemError('NOT_MASTER', `node ${node.nodeId} is a replica: send the load to the master at ${node.masterUrl() ?? '(unknown)'}`, { masterUrl: node.masterUrl() })
      }
      if (loading) {
        ;(request.body as Readable | undefined)?.resume()
        throw new TandemError('OVERLOADED', 'another load is under way on this master: retry once it is done')
      }
      loading = true
      const started = params.timings ? performance.now() : 0
      const file = join(options.loadDir, `load-${randomBytes(6).toString('hex')}.tmp`)
      try {
        const bytes = await receive(request.body as Readable | undefined, file, options.loadLimitBytes)
        if (bytes === 0) throw new TandemError('BAD_REQUEST', 'the body is empty: send a SQLite database file, or SQL text as sqlite3 .dump writes it')
        const source = loadSourceOf(file, decodeUtf8Strict)
        const outcome = await node.write({ load: source }, writeOptions(params, undefined))
        const answer = executeAnswer(outcome, params, started)
        return sendAnswer(reply, answer)
      } finally {
        loading = false
        await rm(file, { force: true })
      }
    })
    done()
  })
}

/**
 * Streams the body into `file`. Past `limit` bytes the rest is read and dropped (the client is
 * still sending it: it must read the answer, not a reset), then BODY_TOO_LARGE; a client that
 * sends for ever is stopped by --request-timeout-ms.
 */
async function receive(body: Readable | undefined, file: string, limit: number): Promise<number> {
  if (body === undefined) return 0
  let bytes = 0
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length
      done(null, bytes > limit ? undefined : chunk)
    },
  })
  await pipeline(body, counter, createWriteStream(file, { flags: 'wx' }))
  if (bytes > limit) throw new TandemError('BODY_TOO_LARGE', `the load is larger than this node takes (--load-limit-bytes ${limit}): nothing was loaded`, { limit })
  return bytes
}
