/**
 * How an HTTP worker hands its node's main process what it does not answer itself: the request
 * as it came (method, URL, headers, body), over a local socket only the node's processes know
 * (http-workers.ts), and the answer back as it goes, streamed both ways. The main process checks
 * the caller again (the gate), so a worker adds no trust: it only saves the main process the
 * HTTP work of the reads it answers. WebSocket upgrades are relayed byte for byte.
 */
import { Agent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import type { Duplex } from 'node:stream'
import { TandemError } from '../shared/errors.ts'
import { errorAnswer } from '../http-api/error-reply.ts'

/** Headers about one connection, not the request: each hop sets its own. */
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'])

/** Errors of a connection to the node's process that was never made: nothing was sent. */
const neverReached = new Set(['ECONNREFUSED', 'ENOENT'])

function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {}
  for (const [name, value] of Object.entries(headers)) if (!hopByHop.has(name) && value !== undefined) out[name] = value
  return out
}

export class PrimaryProxy {
  private readonly socketPath: string
  private readonly agent: Agent
  /** Requests handed on. */
  forwarded = 0

  constructor(socketPath: string) {
    this.socketPath = socketPath
    this.agent = new Agent({ keepAlive: true, maxSockets: 256 })
  }

  /** `body`: the request's body when the worker already read it; else it is streamed from `request`. */
  forward(request: IncomingMessage, response: ServerResponse, body?: Buffer): void {
    this.forwarded++
    const headers = endToEnd(request.headers)
    if (body !== undefined) headers['content-length'] = String(body.length)
    else if (request.headers['transfer-encoding'] !== undefined) headers['transfer-encoding'] = request.headers['transfer-encoding']
    const outgoing = httpRequest({ socketPath: this.socketPath, method: request.method, path: request.url, headers, agent: this.agent })
    outgoing.on('response', (incoming) => {
      response.writeHead(incoming.statusCode ?? 502, endToEnd(incoming.headers))
      incoming.pipe(response)
      incoming.on('error', () => response.destroy())
    })
    outgoing.on('error', (error: NodeJS.ErrnoException) => {
      // Sent, or perhaps sent: whether it ran is unknown, and so it must stay to the client (a
      // write refused here that the node committed would be a lie). Only a request that never
      // reached the node's process is refused.
      if (response.headersSent || !neverReached.has(error.code ?? '')) {
        response.destroy()
        return
      }
      const answer = errorAnswer(new TandemError('NOT_READY', 'this node\'s main process did not answer (it may be restarting); retry shortly'))
      response.writeHead(answer.status, { ...answer.headers, 'content-length': String(Buffer.byteLength(answer.body)) })
      response.end(answer.body)
    })
    // A client that goes away ends the request there too (a wait, a long read, an event stream).
    response.on('close', () => {
      if (!response.writableFinished) outgoing.destroy()
    })
    if (body !== undefined) outgoing.end(body)
    else request.pipe(outgoing)
  }

  /** A WebSocket upgrade: the request's head again, then the two sockets joined. */
  upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy())
    const upstream = connect(this.socketPath)
    upstream.on('error', () => socket.destroy())
    socket.on('close', () => upstream.destroy())
    upstream.on('close', () => socket.destroy())
    const lines = [`${request.method ?? 'GET'} ${request.url ?? '/'} HTTP/1.1`]
    for (let i = 0; i < request.rawHeaders.length; i += 2) lines.push(`${request.rawHeaders[i]}: ${request.rawHeaders[i + 1]}`)
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`)
    if (head.length > 0) upstream.write(head)
    socket.pipe(upstream).pipe(socket)
  }

  close(): void {
    this.agent.destroy()
  }
}
