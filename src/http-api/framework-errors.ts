/**
 * The answers fastify and node:http give on their own (a malformed or oversized request line or
 * headers, a request not received in time, a URL the router cannot decode, a path parameter
 * past its length), in Tandem's error shape like every other answer: rqlite clients read
 * `results` and `error`, and ours read `code`.
 */
import type { Duplex } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { TandemError } from '../shared/errors.ts'
import { errorAnswer, sendError } from './error-reply.ts'

/** node:http's client errors (fastify's `clientErrorHandler`): answered on the raw socket, which is then closed. */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  // A reset connection has nobody left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const answer = errorAnswer(clientErrorOf(error))
  if (socket.writable) {
    const head = [`HTTP/1.1 ${answer.status} ${answer.status === 408 ? 'Request Timeout' : answer.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}`]
    for (const [name, value] of Object.entries(answer.headers)) head.push(`${name}: ${value}`)
    head.push(`content-length: ${Buffer.byteLength(answer.body)}`, 'connection: close')
    socket.write(`${head.join('\r\n')}\r\n\r\n${answer.body}`)
  }
  socket.destroy()
}

function clientErrorOf(error: Error & { code?: string }): TandemError {
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new TandemError('REQUEST_TIMEOUT', 'the request was not received in time (see --headers-timeout-ms and --request-timeout-ms)')
  }
  if (error.code === 'HPE_HEADER_OVERFLOW') return new TandemError('HEADERS_TOO_LARGE', 'the request line and headers are over the size limit (16 KiB)')
  return new TandemError('BAD_REQUEST', `the request is not valid HTTP (${error.code ?? error.message})`)
}

/** The router's own errors (fastify's `frameworkErrors`). */
export function answerFrameworkError(error: Error & { code?: string }, request: FastifyRequest, reply: FastifyReply): void {
  const path = request.url.split('?')[0] ?? ''
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    sendError(reply, new TandemError('URI_TOO_LONG', `a part of the path ${path.slice(0, 100)}… is too long (at most ${maxParamLength} characters)`))
  } else if (error.code === 'FST_ERR_BAD_URL') {
    sendError(reply, new TandemError('BAD_REQUEST', `the URL ${path.slice(0, 200)} is not valid: it holds a malformed %-escape`))
  } else {
    sendError(reply, new TandemError('BAD_REQUEST', error.message))
  }
}

/** Fastify's default: the longest path parameter (a job id, say) the router takes. */
export const maxParamLength = 100
