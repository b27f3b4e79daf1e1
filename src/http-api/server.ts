/**
 * The HTTP API: rqlite's endpoints and shapes, plus Tandem's additions (LSNs on writes,
 * min_lsn on reads, /db/checksum, the replication stream). Routes parse and validate, then ask
 * the node; a replica forwards what needs the master (or redirects with `redirect`).
 */
import { pipeline } from 'node:stream'
import { constants as zlibConstants, createGzip } from 'node:zlib'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Logger } from '../shared/logger.ts'
import { TandemError, codes } from '../shared/errors.ts'
import type { StatementResult } from '../storage/index.ts'
import type { WriteOutcome, WriteRequest } from '../master/write-pipeline.ts'
import { requestHash, validateIdempotencyKey } from '../master/idempotency.ts'
import { asTandemError, sendError } from './error-reply.ts'
import { answerFastRead, answerFastWrite } from './fast-path.ts'
import { Forwarder } from './forwarder.ts'
import { stringifyJson } from './json.ts'
import type { NodeApi } from './node-api.ts'
import { parseQueryParams, type Level, type QueryParams } from './query-params.ts'
import { decodeUtf8Strict, parseStatements } from './request-parser.ts'
import { readAnswer } from './read-answer.ts'
import { sendAnswer } from './answer.ts'
import { executeAnswer, writeOptions } from './execute-answer.ts'
import { formatResult, type FormatOptions } from './rqlite-format.ts'
import { registerJobRoutes } from './job-routes.ts'
import { registerLoadRoutes } from './load-routes.ts'
import { WriteQueue } from './write-queue.ts'
import { answerClientError, answerFrameworkError, maxParamLength } from './framework-errors.ts'
import { permissionFor, type Gate } from './gate.ts'
import { acceptGatedUpgrades, accessFor, createGatedServer } from './gated-server.ts'
import type { PeerCredentials, TlsFiles } from '../security/index.ts'

export interface HttpServerOptions {
  bodyLimitBytes: number
  /** POST /db/load: where its body is kept while it loads, and its largest size. */
  load: { dir: string; limitBytes: number }
  /** See NodeConfig: headers must arrive within headersTimeoutMs, the whole request within requestTimeoutMs. */
  headersTimeoutMs: number
  requestTimeoutMs: number
  connectionsMax: number
  logger: Logger
  gate: Gate
  /** HTTPS from the first byte (and mutual TLS when it says so); undefined: plain HTTP. */
  tls: TlsFiles | undefined
  /** How this node talks to the master when it forwards a request. */
  peers: PeerCredentials
}

type Query = Record<string, string | string[] | undefined>

/** Fastify's own default, which its servers send as `Keep-Alive: timeout=72`. */
const fastifyKeepAliveTimeoutMs = 72_000

/** Every body is parsed as a string (see the content-type parser below). */
function bodyText(request: FastifyRequest): string {
  return typeof request.body === 'string' ? request.body : ''
}

/** Runs work that ends early (its signal aborted) when the client closes its connection: a wait, a read. */
async function whileConnected<T>(reply: FastifyReply, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const gone = new AbortController()
  const onClose = () => gone.abort()
  reply.raw.once('close', onClose)
  try {
    return await work(gone.signal)
  } finally {
    reply.raw.off('close', onClose)
  }
}

export function createHttpServer(node: NodeApi, options: HttpServerOptions) {
  /** Requests answered by fast-path.ts, without the framework. */
  const fast = { reads: 0, writes: 0 }
  const fastWrites = { bodyLimitBytes: options.bodyLimitBytes, logger: options.logger }
  const { gate } = options
  const app = Fastify({
    // Fastify logs every request at info; its logger sees warnings and errors only.
    loggerInstance: options.logger.child({}, { level: 'warn' }),
    bodyLimit: options.bodyLimitBytes,
    routerOptions: { maxParamLength },
    frameworkErrors: answerFrameworkError,
    clientErrorHandler: answerClientError,
    // Cheap point reads and plain writes are answered before the framework sees them
    // (fast-path.ts). The server gets the timeouts fastify gives the servers it creates.
    serverFactory: (handler) =>
      createGatedServer({ ...options, keepAliveTimeoutMs: fastifyKeepAliveTimeoutMs }, (request, response) => {
        if (answerFastRead(node, request, response)) fast.reads++
        else if (answerFastWrite(node, request, response, fastWrites)) fast.writes++
        else handler(request, response)
      }),
  })
  const forwarder = new Forwarder(options.peers)
  const writeQueue = new WriteQueue(options.logger)
  app.addHook('onClose', async () => forwarder.close())

  // rqlite reads every body as JSON (or text/plain SQL), whatever the content type says.
  app.removeAllContentTypeParsers()
  // Decoded strictly: invalid UTF-8 is a 400, not SQL with U+FFFD in it.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => {
    try {
      done(null, decodeUtf8Strict(body as Buffer))
    } catch (error) {
      done(error as Error, undefined)
    }
  })

  app.setErrorHandler((error: unknown, _request, reply) => sendError(reply, asTandemError(error, options.bodyLimitBytes, options.logger)))

  // The gate looked the permission up from the URL as sent, but the router also matches
  // spellings that text does not show (`/st%61tus`, `http://host/status`, `/status#x`): check
  // again on the route that will run, or such a spelling reaches its endpoint unchecked.
  app.addHook('onRequest', (request, _reply, done) => {
    const route = request.routeOptions.url
    const permission = request.method === 'OPTIONS' || route === undefined ? undefined : permissionFor(route)
    try {
      if (permission !== undefined) gate.require(accessFor(request), permission, `${request.method} ${route}`)
    } catch (error) {
      done(error as TandemError)
      return
    }
    done()
  })

  // Every answer says which epoch the node knows, so a client can tell a deposed master.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (!reply.hasHeader('x-tandem-epoch')) reply.header('x-tandem-epoch', String(node.epoch()))
    done(null, payload)
  })
  app.setNotFoundHandler((request, reply) => sendError(reply, new TandemError('NOT_FOUND', `no endpoint ${request.method} ${request.url.split('?')[0]}`)))

  const sendJson = (reply: FastifyReply, body: unknown, params?: QueryParams) =>
    reply.header('content-type', 'application/json; charset=utf-8').send(stringifyJson(body, params?.pretty ?? false))

  const format = (results: StatementResult[], params: QueryParams) => results.map((r) => formatResult(r, params))

  /** On a replica, hands the request to the master: redirect (301) or forward. */
  const toMaster = (request: FastifyRequest, reply: FastifyReply, params: QueryParams): Promise<FastifyReply> | FastifyReply => {
    const masterUrl = node.masterUrl()
    if (masterUrl === undefined) throw new TandemError('NO_MASTER', 'this replica does not know its master')
    if (params.redirect) return reply.status(301).header('location', `${masterUrl}${request.url}`).send()
    if (request.headers['x-tandem-forwarded'] !== undefined) {
      throw new TandemError('NOT_MASTER', `node ${node.nodeId} is a replica and will not forward a forwarded request again`, { masterUrl })
    }
    return forwarder.forward(masterUrl, request, reply, typeof request.body === 'string' ? request.body : undefined, node.epoch())
  }

  const methods = (allowed: string[], handler: (request: FastifyRequest, reply: FastifyReply) => unknown) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      if (!allowed.includes(request.method)) {
        reply.header('allow', allowed.join(', '))
        throw new TandemError('METHOD_NOT_ALLOWED', `${request.method} is not allowed on ${request.url.split('?')[0]}; use ${allowed.join(' or ')}`)
      }
      return handler(request, reply)
    }
  const anyMethod = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'] as const
  /** A read-only endpoint: rqlite answers 405 (not 404) to any other method on it. */
  const getOnly = (url: string, handler: (request: FastifyRequest, reply: FastifyReply) => unknown) =>
    app.route({ method: [...anyMethod], url, handler: methods(['GET'], handler) })

  // rqlite answers OPTIONS on every path with 200 and an empty body (CORS preflight).
  // Browsers see the CORS headers only for origins --cors-origin allows (set by the gate).
  app.options('*', (_request, reply) =>
    reply.status(200).header('access-control-allow-methods', 'OPTIONS, GET, POST').header('access-control-allow-headers', 'Content-Type, Authorization, Idempotency-Key').send(),
  )

  const execute = async (request: FastifyRequest, reply: FastifyReply, params: QueryParams) => {
    if (node.role !== 'master') return toMaster(request, reply, params)
    // The clock is read only when the answer reports the time.
    const started = params.timings ? performance.now() : 0
    const statements = parseStatements(bodyText(request), request.headers['content-type'])
    const write: WriteRequest = { statements, transaction: params.transaction, ...(params.dbTimeoutMs === undefined ? {} : { limitMs: params.dbTimeoutMs }) }
    const key = idempotencyKeyOf(request)
    if (key !== undefined) write.idempotency = { key, hash: requestHash(write) }
    // A write forwarded by a replica carries the epoch it knows: a newer one deposes this master.
    // Only another node of the cluster may tell it so: a client's X-Tandem-* headers are ignored.
    const senderEpoch = Number(request.headers['x-tandem-epoch'])
    const access = accessFor(request)
    const forwardedEpoch = access.isForwarded && access.isNode && Number.isInteger(senderEpoch) ? senderEpoch : undefined
    if (params.queue) return queued(reply, params, () => node.write(write, writeOptions(params, forwardedEpoch)))
    const outcome = await node.write(write, writeOptions(params, forwardedEpoch))
    return sendAnswer(reply, executeAnswer(outcome, params, started))
  }

  /** ?queue: the sequence number at once, or with `wait` once the write is applied (write-queue.ts). */
  const queued = async (reply: FastifyReply, params: QueryParams, write: () => Promise<WriteOutcome>) => {
    const { sequenceNumber, done } = await writeQueue.enqueue(write)
    const applied = params.wait ? await writeQueue.applied(sequenceNumber, done, params.timeoutMs) : undefined
    return sendJson(reply, { results: [], sequence_number: sequenceNumber, ...(applied === undefined ? {} : { lsn: applied.lsn }) }, params)
  }

  const idempotencyKeyOf = (request: FastifyRequest): string | undefined => {
    const header = request.headers['idempotency-key']
    if (header === undefined) return undefined
    const key = Array.isArray(header) ? header[0]! : header
    validateIdempotencyKey(key)
    return key
  }

  const read = async (request: FastifyRequest, reply: FastifyReply, params: QueryParams, statementsText: () => ReturnType<typeof parseStatements>) => {
    const level: Level = params.level ?? (params.minLsn !== undefined || params.freshnessMs !== undefined ? 'none' : 'weak')
    const local = node.role === 'master' || level === 'none' || level === 'auto'
    if (!local) return toMaster(request, reply, params)
    const started = params.timings ? performance.now() : 0
    const statements = statementsText()
    if (node.role === 'replica' && params.freshnessMs !== undefined) {
      const { sinceContactMs, dataAgeMs } = node.staleness()
      if (sinceContactMs === undefined || sinceContactMs > params.freshnessMs) {
        throw new TandemError('REPLICA_TOO_STALE', `stale read: this replica last heard its master ${sinceContactMs === undefined ? 'never' : `${Math.round(sinceContactMs)} ms ago`}, beyond freshness ${params.freshnessMs} ms`)
      }
      if (params.freshnessStrict && dataAgeMs !== undefined && dataAgeMs > params.freshnessMs) {
        throw new TandemError('REPLICA_TOO_STALE', `stale read: this replica's data is ${Math.round(dataAgeMs)} ms behind its master, beyond freshness ${params.freshnessMs} ms`)
      }
    }
    if (params.minLsn !== undefined) await whileConnected(reply, (signal) => node.waitForLsn(params.minLsn!, params.minLsnTimeoutMs, signal))
    if (node.role === 'master' && (level === 'strong' || level === 'linearizable')) await node.confirmMastership(params.linearizableTimeoutMs)
    node.assertReadable()
    if (params.pretty) {
      // Indented output takes the older path: results as objects, formatted and serialized here.
      const results = await whileConnected(reply, (signal) => node.query(statements, params.transaction, { limitMs: params.dbTimeoutMs, signal }))
      const body: Record<string, unknown> = { results: format(results, params) }
      if (params.timings) body['time'] = (performance.now() - started) / 1000
      reply.header('x-tandem-lsn', String(node.appliedLsn()))
      return sendJson(reply, body, params)
    }
    // The same bytes, with the results formatted and serialized where the read ran. Only the
    // three flags are passed: the options travel to the read thread by structured clone.
    const formatOptions: FormatOptions = { associative: params.associative, timings: params.timings, blobArray: params.blobArray }
    const resultsText = await whileConnected(reply, (signal) => node.queryJson(statements, params.transaction, formatOptions, { limitMs: params.dbTimeoutMs, signal }))
    return sendAnswer(reply, readAnswer(resultsText, node.appliedLsn(), params.timings ? (performance.now() - started) / 1000 : undefined))
  }

  app.route({
    method: [...anyMethod],
    url: '/db/execute',
    handler: methods(['POST'], (request, reply) => execute(request, reply, parseQueryParams(request.query as Query))),
  })

  app.route({
    method: [...anyMethod],
    url: '/db/query',
    handler: methods(['GET', 'POST'], (request, reply) => {
      const params = parseQueryParams(request.query as Query)
      return read(request, reply, params, () => {
        if (request.method === 'GET') return params.q === undefined ? [] : [{ sql: params.q }]
        return parseStatements(bodyText(request), request.headers['content-type'])
      })
    }),
  })

  app.route({
    method: [...anyMethod],
    url: '/db/request',
    handler: methods(['POST'], (request, reply) => {
      const params = parseQueryParams(request.query as Query)
      const statements = parseStatements(bodyText(request), request.headers['content-type'])
      const writes = node.isWrite(statements)
      if (writes) gate.require(accessFor(request), 'execute', 'a write through POST /db/request')
      if (node.role === 'master' ? writes : true) {
        // A replica cannot tell reads from writes without the master's schema for certain; a
        // read-only request with a local level is still served here.
        if (node.role === 'replica' && !writes) return read(request, reply, params, () => statements)
        return execute(request, reply, params)
      }
      return read(request, reply, params, () => statements)
    }),
  })

  getOnly('/status', (request, reply) => sendJson(reply, { ...node.status(), http: { fast_reads: fast.reads, fast_writes: fast.writes } }, parseQueryParams(request.query as Query)))

  getOnly('/nodes', async (request, reply) => {
    const params = parseQueryParams(request.query as Query)
    const masterUrl = node.masterUrl()
    if (node.role === 'replica' && masterUrl !== undefined && request.headers['x-tandem-forwarded'] === undefined) {
      try {
        return await forwarder.forward(masterUrl, request, reply, undefined)
      } catch {
        // Fall through to this replica's own view.
      }
    }
    const nodes = node.nodes().map((n) => ({
      id: n.id,
      api_addr: n.url,
      addr: new URL(n.url).host,
      voter: n.role === 'master',
      reachable: n.reachable,
      leader: n.role === 'master',
      role: n.role,
      ...(n.role === 'master' ? { epoch: node.role === 'master' ? node.epoch() : n.epoch ?? null } : {}),
      ...(n.deposed === true ? { deposed: true } : {}),
      ...(n.version === undefined ? {} : { version: n.version }),
      applied_lsn: n.appliedLsn,
      lag_entries: n.lagEntries,
      lag_ms: n.lagMs,
      ...(n.error === undefined ? {} : { error: n.error }),
    }))
    // rqlite's new format lists the nodes sorted by id.
    if (params.ver === '2') return sendJson(reply, { nodes: nodes.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) }, params)
    return sendJson(reply, Object.fromEntries(nodes.map((n) => [n.id, n])), params)
  })

  getOnly('/readyz', (request, reply) => {
    const params = parseQueryParams(request.query as Query)
    const ready = node.isReady()
    const lines = params.noleader ? ready.lines.slice(0, 1) : ready.lines
    const ok = params.noleader ? true : ready.ok
    return reply.status(ok ? 200 : 503).header('content-type', 'text/plain; charset=utf-8').send(lines.join('\n'))
  })

  app.get('/db/checksum', (request, reply) => {
    node.assertReadable()
    return sendJson(reply, node.checksum(), parseQueryParams(request.query as Query))
  })

  const sendSnapshot = async (reply: FastifyReply, compress = false) => {
    const snapshot = await node.snapshot()
    reply
      .header('content-type', 'application/octet-stream')
      .header('x-tandem-lsn', String(snapshot.lsn))
      .header('x-tandem-epoch', String(snapshot.epoch))
    // rqlite gzips with BestSpeed and keeps the content type; the length is then unknown. A
    // failure mid-stream cuts the response, and the missing gzip trailer tells the client.
    if (compress) return reply.send(pipeline(snapshot.stream, createGzip({ level: zlibConstants.Z_BEST_SPEED }), () => {}))
    return reply.header('content-length', String(snapshot.bytes)).send(snapshot.stream)
  }

  getOnly('/db/backup', async (request, reply) => {
    const params = parseQueryParams(request.query as Query)
    // The snapshot is already a rollback-journal (DELETE mode) file, so `fmt=delete` is served
    // as is; `fmt=sql` is the SQL text sqlite3 .dump writes.
    if (params.fmt !== undefined && params.fmt !== 'binary' && params.fmt !== 'delete' && params.fmt !== 'sql') {
      throw new TandemError('BAD_REQUEST', `fmt=${params.fmt} is not supported: fmt=binary or fmt=delete (the SQLite file), or fmt=sql (SQL text)`)
    }
    if (node.role === 'replica' && !params.noleader) return toMaster(request, reply, params)
    node.assertReadable()
    if (params.fmt === 'sql') {
      const text = node.dump()
      reply.header('content-type', 'text/plain; charset=utf-8')
      return reply.send(params.compress ? pipeline(text, createGzip({ level: zlibConstants.Z_BEST_SPEED }), () => {}) : text)
    }
    return sendSnapshot(reply, params.compress)
  })

  app.post('/cluster/promote', async (request, reply) => {
    const query = request.query as Query
    const result = await node.promote(query['force'] !== undefined)
    return sendJson(reply, result, parseQueryParams(query))
  })

  app.post('/cluster/fence', (request, reply) => {
    gate.requireNode(accessFor(request), 'POST /cluster/fence')
    const usage = 'fence needs the epoch, the node asking for it and where its log ends: {"epoch": N, "candidate": {"id": "…", "url": "http://…"}, "position": {"epoch": N, "lsn": N}}'
    let body: { epoch?: unknown; candidate?: { id?: unknown; url?: unknown }; position?: { epoch?: unknown; lsn?: unknown } }
    try {
      body = JSON.parse(bodyText(request) || '{}') as typeof body
    } catch {
      throw new TandemError('BAD_REQUEST', `the body must be JSON: ${usage}`)
    }
    const { epoch, candidate } = body
    if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 1 || epoch > 0xffffffff) throw new TandemError('BAD_REQUEST', usage)
    const id = candidate?.id
    const url = candidate?.url
    if (typeof id !== 'string' || typeof url !== 'string' || id.length === 0 || id.length > 128 || !/^https?:\/\/[^\s]{1,2000}$/.test(url)) throw new TandemError('BAD_REQUEST', usage)
    const position = body.position
    const counter = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0
    if (typeof position !== 'object' || position === null || !counter(position.epoch) || !counter(position.lsn)) throw new TandemError('BAD_REQUEST', usage)
    return sendJson(reply, node.fence(epoch, { id, url }, { epoch: position.epoch, lsn: position.lsn }), parseQueryParams(request.query as Query))
  })

  app.post('/cluster/follow', async (request, reply) => {
    const query = request.query as Query
    let master = typeof query['master'] === 'string' ? query['master'] : undefined
    if (master === undefined) {
      try {
        master = (JSON.parse(bodyText(request) || '{}') as { master?: unknown }).master as string | undefined
      } catch {
        throw new TandemError('BAD_REQUEST', 'the body must be JSON: {"master": "http://host:port"}')
      }
    }
    if (typeof master !== 'string' || !/^https?:\/\/[^/]+$/.test(master.replace(/\/+$/, ''))) {
      throw new TandemError('BAD_REQUEST', 'follow needs the master URL: {"master": "http://host:port"}')
    }
    const access = accessFor(request)
    return sendJson(reply, await node.follow(master, { byNode: access.isNode && !access.isForwarded }), parseQueryParams(query))
  })

  // Lag as the replica measures it: the master's commit time in each entry → visible here.
  getOnly('/replication/lag', (request, reply) => {
    const query = request.query as Query
    const text = typeof query['since'] === 'string' ? query['since'] : undefined
    const since = text === undefined ? Date.now() - 10_000 : Number(text)
    if (!Number.isFinite(since)) throw new TandemError('BAD_REQUEST', 'since must be a time in milliseconds since the epoch')
    return sendJson(reply, { since, ...node.applyLag(since) }, parseQueryParams(query))
  })

  app.get('/replication/snapshot', async (request, reply) => {
    if (node.role !== 'master') throw new TandemError('NOT_MASTER', `node ${node.nodeId} is a replica`, { masterUrl: node.masterUrl() })
    // A node never installs a snapshot of another cluster: it checks this header first.
    node.checkCluster(headerText(request.headers['x-tandem-cluster']), `the replica asking for a snapshot`)
    reply.header('x-tandem-cluster', node.clusterId() ?? '')
    return sendSnapshot(reply)
  })

  registerJobRoutes(app, node, { toMaster, sendJson })
  registerLoadRoutes(app as unknown as Pick<FastifyInstance, 'register'>, node, { loadDir: options.load.dir, loadLimitBytes: options.load.limitBytes, toMaster })

  // The replication stream: a WebSocket on the same port. Before the server closes (it waits
  // for open connections), its sockets are ended: they never end by themselves.
  const closeStreams = acceptGatedUpgrades(app.server, '/replication', options, (ws, request, caller) => node.acceptReplication(ws, request, caller))
  app.addHook('preClose', (done) => closeStreams(() => done()))

  return app
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

export { codes }
