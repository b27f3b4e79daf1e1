import type { FastifyReply } from 'fastify'

/**
 * An HTTP answer as data: what a route sends through fastify and what fast-path.ts writes on
 * the bare response are built by the same functions, so both paths answer the same bytes.
 */
export interface Answer {
  status: number
  /** In the order they are sent; every answer also gets x-tandem-epoch (and its length). */
  headers: Record<string, string>
  body: string
}

/** Sends an answer through fastify (its onSend hook adds x-tandem-epoch). */
export function sendAnswer(reply: FastifyReply, answer: Answer): FastifyReply {
  return reply.status(answer.status).headers(answer.headers).send(answer.body)
}
