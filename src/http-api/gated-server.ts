/**
 * The node's listening socket and what happens before a route runs: every request and every
 * WebSocket upgrade passes the gate (gate.ts) first — Host, Origin, identity, the endpoint's
 * permission — and is refused here, in Tandem's error shape, when it may not go on. What passes
 * is handed on with the gate's verdict remembered (accessFor), so routes can ask who is calling.
 * Also the server's timeouts and connection cap, and HTTPS when the node has TLS.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { Duplex } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import { WebSocketServer, type WebSocket } from 'ws'
import { TandemError } from '../shared/errors.ts'
import type { Logger } from '../shared/logger.ts'
import type { TlsFiles } from '../security/index.ts'
import { asTandemError, errorAnswer } from './error-reply.ts'
import { permissionFor, type Access, type Gate } from './gate.ts'

export interface GatedServerOptions {
  gate: Gate
  /** HTTPS from the first byte (and mutual TLS when it says so); undefined: plain HTTP. */
  tls: TlsFiles | undefined
  /** Headers must arrive within headersTimeoutMs, the whole request within requestTimeoutMs. */
  headersTimeoutMs: number
  requestTimeoutMs: number
  connectionsMax: number
  keepAliveTimeoutMs: number
  bodyLimitBytes: number
  logger: Logger
}

/** What the gate decided for each request it let through. */
const accessOf = new WeakMap<IncomingMessage, Access>()

/** The gate's verdict on a request a route handles. */
export function accessFor(request: FastifyRequest): Access {
  const access = accessOf.get(request.raw)
  if (access === undefined) throw new TandemError('INTERNAL', 'a request reached a route without passing the gate')
  return access
}

function writeRefusal(response: ServerResponse, error: TandemError): void {
  const answer = errorAnswer(error)
  response.writeHead(answer.status, { ...answer.headers, 'content-length': String(Buffer.byteLength(answer.body)) })
  response.end(answer.body)
}

/** Refuses a WebSocket upgrade with a plain HTTP answer on the raw socket. */
function refuseUpgrade(socket: Duplex, error: TandemError): void {
  const answer = errorAnswer(error)
  const head = [`HTTP/1.1 ${answer.status} ${error.code}`, ...Object.entries(answer.headers).map(([k, v]) => `${k}: ${v}`), `content-length: ${Buffer.byteLength(answer.body)}`, 'connection: close']
  socket.end(`${head.join('\r\n')}\r\n\r\n${answer.body}`)
}

type Serve = (request: IncomingMessage, response: ServerResponse) => void

/** A request listener that hands requests to `serve` only past the gate, with their CORS headers set. */
export function gatedListener(options: Pick<GatedServerOptions, 'gate' | 'bodyLimitBytes' | 'logger'>, serve: Serve): Serve {
  const { gate } = options
  const pass = (request: IncomingMessage, response: ServerResponse, verdict: Access | TandemError) => {
    if (verdict instanceof TandemError) return writeRefusal(response, verdict)
    const url = request.url ?? '/'
    const query = url.indexOf('?')
    const path = query < 0 ? url : url.slice(0, query)
    const permission = request.method === 'OPTIONS' ? undefined : permissionFor(path)
    // can() first: the refusal's message is built only for a refusal, not on every request.
    if (permission !== undefined && !gate.can(verdict, permission)) {
      try {
        gate.require(verdict, permission, `${request.method ?? 'GET'} ${path}`)
      } catch (error) {
        return writeRefusal(response, error as TandemError)
      }
    }
    const cors = gate.corsHeaders(request)
    if (cors !== undefined) for (const [name, value] of Object.entries(cors)) response.setHeader(name, value)
    accessOf.set(request, verdict)
    serve(request, response)
  }
  const listener = (request: IncomingMessage, response: ServerResponse) => {
    const verdict = gate.admit(request)
    if (verdict instanceof Promise) {
      verdict.then(
        (v) => pass(request, response, v),
        (error: unknown) => writeRefusal(response, asTandemError(error, options.bodyLimitBytes, options.logger)),
      )
    } else pass(request, response, verdict)
  }
  return listener
}

/** The server's timeouts and connection cap (see GatedServerOptions), on a plain HTTP server or an HTTPS one. */
export function createGatedServer(options: GatedServerOptions, serve: Serve): Server {
  const listener = gatedListener(options, serve)
  // Node checks the two timeouts every connectionsCheckingInterval (30 s by default, which
  // let a silent socket live for up to 40 s past a 10 s limit): check every second instead.
  const timeouts = {
    headersTimeout: Math.min(options.headersTimeoutMs, options.requestTimeoutMs),
    requestTimeout: options.requestTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, options.headersTimeoutMs),
    keepAliveTimeout: options.keepAliveTimeoutMs,
  }
  const tls = options.tls
  const server =
    tls === undefined
      ? createServer(timeouts, listener)
      : createHttpsServer({ ...timeouts, cert: tls.cert, key: tls.key, ...(tls.ca === undefined ? {} : { ca: tls.ca }), requestCert: tls.clientAuth, rejectUnauthorized: tls.clientAuth }, listener)
  // requestTimeout bounds receiving a request, not answering it, so the long waits (a job's
  // wait and event stream, min_lsn) are untouched; no inactivity timeout for the same reason.
  server.setTimeout(0)
  server.maxConnections = options.connectionsMax
  return server
}

/**
 * Takes WebSocket upgrades to `path` that pass the gate with the `replicate` permission and hands
 * them to `accept`, saying whether a node of the cluster opened them. Returns a closer that ends
 * every such socket (they never end by themselves).
 */
export function acceptGatedUpgrades(
  server: Server,
  path: string,
  options: Pick<GatedServerOptions, 'gate' | 'logger'>,
  accept: (socket: WebSocket, request: IncomingMessage, caller: { isNode: boolean }) => void,
): (done: () => void) => void {
  const { gate, logger } = options
  const sockets = new WebSocketServer({ noServer: true, maxPayload: 1 << 20 })
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node hands the socket over without its error listener: a client that resets the
    // connection before it is refused or upgraded would otherwise crash the node.
    socket.on('error', () => socket.destroy())
    if (request.url?.split('?')[0] !== path) {
      socket.destroy()
      return
    }
    const refuse = (error: TandemError) => {
      // Both sides say why: the replica in its /status, the master here.
      logger.warn({ address: request.socket.remoteAddress, code: error.code }, `refused a replication stream: ${error.message}`)
      refuseUpgrade(socket, error)
    }
    const upgrade = (verdict: Access | TandemError) => {
      if (verdict instanceof TandemError) return refuse(verdict)
      try {
        gate.require(verdict, 'replicate', 'the replication stream')
      } catch (error) {
        return refuse(error as TandemError)
      }
      // Only a proven node's stream counts: its acks for sync=K, its URL for promotions, its epoch for fencing, its slots for jobs.
      sockets.handleUpgrade(request, socket, head, (ws) => accept(ws, request, { isNode: verdict.isNode && !verdict.isForwarded }))
    }
    const verdict = gate.admit(request)
    if (verdict instanceof Promise) verdict.then(upgrade, () => socket.destroy())
    else upgrade(verdict)
  })
  return (done) => {
    for (const client of sockets.clients) client.terminate()
    sockets.close(() => done())
  }
}
