import type { FastifyReply } from 'fastify'
import { TandemError, codes } from '../shared/errors.ts'
import { stringifyJson } from './json.ts'

/**
 * The one place a TandemError becomes an HTTP response: the catalogue's status, a JSON body
 * with `results: []` (rqlite clients require the field), the message and the stable code.
 */
export function sendError(reply: FastifyReply, error: TandemError): FastifyReply {
  const body: Record<string, unknown> = { results: [], error: error.message, code: error.code }
  if (Object.keys(error.details).length > 0) body['details'] = error.details
  if (error.code === 'NOT_MASTER' && typeof error.details['masterUrl'] === 'string') body['master'] = error.details['masterUrl']
  return reply
    .status(codes[error.code].status)
    .header('content-type', 'application/json; charset=utf-8')
    .header('x-tandem-error', error.code)
    .send(stringifyJson(body))
}
