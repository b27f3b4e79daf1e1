import type { FastifyReply } from 'fastify'
import { TandemError, codes, messageOf } from '../shared/errors.ts'
import type { Logger } from '../shared/logger.ts'
import { sendAnswer, type Answer } from './answer.ts'
import { stringifyJson } from './json.ts'

/**
 * The one place a TandemError becomes an HTTP answer: the catalogue's status, a JSON body with
 * `results: []` (rqlite clients require the field), the message and the stable code.
 */
export function errorAnswer(error: TandemError): Answer {
  const body: Record<string, unknown> = { results: [], error: error.message, code: error.code }
  if (Object.keys(error.details).length > 0) body['details'] = error.details
  if (error.code === 'NOT_MASTER' && typeof error.details['masterUrl'] === 'string') body['master'] = error.details['masterUrl']
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', 'x-tandem-error': error.code }
  // RFC 9110: a 401 names the scheme to answer with; rqlite clients send Basic.
  if (error.code === 'UNAUTHORIZED') headers['www-authenticate'] = 'Basic realm="tandem", charset="UTF-8"'
  return { status: codes[error.code].status, headers, body: stringifyJson(body) }
}

export function sendError(reply: FastifyReply, error: TandemError): FastifyReply {
  return sendAnswer(reply, errorAnswer(error))
}

/**
 * Any error a request ends with, as the TandemError it is answered with: framework errors by
 * their status (413: the body limit; other 4xx: a bad request); anything else is a bug, logged.
 */
export function asTandemError(error: unknown, bodyLimitBytes: number, logger: Logger): TandemError {
  if (error instanceof TandemError) return error
  const status = (error as { statusCode?: number }).statusCode
  if (status === 413) return new TandemError('BODY_TOO_LARGE', `the request body is over the limit of ${bodyLimitBytes} bytes`)
  if (status !== undefined && status >= 400 && status < 500) return new TandemError('BAD_REQUEST', messageOf(error))
  logger.error({ err: error }, 'request failed')
  return new TandemError('INTERNAL', `internal error: ${messageOf(error)}`)
}
