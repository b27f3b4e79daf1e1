/**
 * An HTTP worker: a process of a node's own, started by its main process (http-workers.ts), that
 * answers the HTTP requests of the connections handed to it. It answers reads on its own
 * read-only connection to the node's database when it can (worker-reads.ts), and hands
 * everything else to the main process (primary-proxy.ts). Every request passes the same gate as
 * on the main process first: the same users, cluster secret, Host and Origin checks.
 *
 * It holds no state of its own worth keeping: the main process kills it when the node stops,
 * and starts another if it dies; it exits when the main process goes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { createLogger } from '../shared/logger.ts'
import { databasePath, StatementLimits } from '../storage/index.ts'
import { createGatedServer } from '../http-api/gated-server.ts'
import { queryOf } from '../http-api/fast-path.ts'
import { parseQueryParams, type QueryParams } from '../http-api/query-params.ts'
import { decodeUtf8Strict, parseStatements } from '../http-api/request-parser.ts'
import type { Answer } from '../http-api/answer.ts'
import type { SqlStatement } from '../storage/index.ts'
import type { NodeConfig } from './config.ts'
import { loadNodeSecurity } from './node-security.ts'
import { SharedNodeState } from './shared-node-state.ts'
import { WorkerReads } from './worker-reads.ts'
import { PrimaryProxy } from './primary-proxy.ts'
import type { FromHttpWorker, HttpWorkerInit, ToHttpWorker } from './http-workers.ts'

const init = JSON.parse(process.argv[2] ?? '{}') as HttpWorkerInit
const config: NodeConfig = init.config
const logger = createLogger(`${config.role}-http-${init.index}`)
/** Said on every answer given here (the main process's answers have no such header). */
const workerName = String(init.index)
const send = (message: FromHttpWorker) => process.send?.(message)

StatementLimits.forThisThread()?.setResultBytesMax(config.resultBytesMax)
const { gate } = loadNodeSecurity(config)
const state = SharedNodeState.open(init.statePath)
const reads = new WorkerReads(databasePath(config.dataDir), state, config)
const proxy = new PrimaryProxy(init.forwardPath)

/** `epoch`: the newer of the node's and that of the snapshot read (WorkerReads.answer). */
function answer(response: ServerResponse, reply: Answer & { epoch: number }): void {
  response.writeHead(reply.status, { ...reply.headers, 'x-tandem-epoch': String(reply.epoch), 'x-tandem-http-worker': workerName, 'content-length': String(Buffer.byteLength(reply.body)) })
  response.end(reply.body)
}

/** The statements and parameters of a /db/query request, or undefined when the main process should see it. */
function readOf(request: IncomingMessage, body: Buffer | undefined): { statements: SqlStatement[]; params: QueryParams } | undefined {
  const params = parseQueryParams(queryOf(request.url, '/db/query') ?? {})
  if (body === undefined) return params.q === undefined ? undefined : { statements: [{ sql: params.q }], params }
  return { statements: parseStatements(decodeUtf8Strict(body), request.headers['content-type']), params }
}

/** Answers here, or forwards (with the body already read, when there was one). */
function serveQuery(request: IncomingMessage, response: ServerResponse, body: Buffer | undefined): void {
  let reply: (Answer & { epoch: number }) | undefined
  try {
    const query = readOf(request, body)
    reply = query === undefined ? undefined : reads.answer(query.statements, query.params)
  } catch {
    // A bad parameter or body: the main process answers it with its error.
    reply = undefined
  }
  if (reply === undefined) proxy.forward(request, response, body)
  else answer(response, reply)
}

function serve(request: IncomingMessage, response: ServerResponse): void {
  if (queryOf(request.url, '/db/query') === undefined || (request.method !== 'GET' && request.method !== 'POST')) return proxy.forward(request, response)
  const length = request.headers['content-length']
  const chunked = request.headers['transfer-encoding'] !== undefined
  if (request.method === 'GET') {
    if (chunked || (length !== undefined && length !== '0')) return proxy.forward(request, response)
    return serveQuery(request, response, undefined)
  }
  // A POST body is read here only when its length is known and within the limit; any other
  // goes to the main process as it streams, to be refused or read there.
  const bytes = Number(length)
  if (chunked || !Number.isSafeInteger(bytes) || bytes > config.bodyLimitBytes) return proxy.forward(request, response)
  const chunks: Buffer[] = []
  request.on('data', (chunk: Buffer) => chunks.push(chunk))
  request.on('error', () => response.destroy())
  request.on('end', () => serveQuery(request, response, Buffer.concat(chunks)))
}

const server = createGatedServer(
  {
    gate,
    tls: undefined,
    headersTimeoutMs: config.headersTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    connectionsMax: config.connectionsMax,
    keepAliveTimeoutMs: 72_000,
    bodyLimitBytes: config.bodyLimitBytes,
    logger,
  },
  serve,
)
server.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => proxy.upgrade(request, socket, head))

/** Connections open here: at most connectionsMax, as on the main process. */
let open = 0

process.on('message', (message: ToHttpWorker, socket: Socket | undefined) => {
  if (message.type !== 'connection' || socket === undefined) return
  if (open >= config.connectionsMax) {
    socket.destroy()
    return
  }
  open++
  socket.once('close', () => open--)
  // What the main process read of it to choose this worker: read again here, first.
  socket.unshift(Buffer.from(message.head, 'latin1'))
  server.emit('connection', socket)
  socket.resume()
})

// The main process went away (it stopped, or died): so does this worker.
process.on('disconnect', () => process.exit(0))

// A snapshot install closes the file: let go of it even while no read comes.
setInterval(() => {
  try {
    if ((state.fileGeneration() & 1) === 1) reads.close()
  } catch {
    // Nothing to close.
  }
  send({ type: 'stats', served: reads.served, forwarded: proxy.forwarded, connections: open })
}, 250).unref()

send({ type: 'ready' })
