/**
 * Relays a request to the master on behalf of a replica, and the master's answer back. Keeps
 * one keep-alive pool to the current master.
 */
import { Pool } from 'undici'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { TandemError, messageOf } from '../shared/errors.ts'
import type { PeerCredentials } from '../security/index.ts'

const relayedHeaders = ['content-type', 'x-tandem-lsn', 'x-tandem-epoch', 'x-tandem-error', 'x-tandem-idempotent-replay', 'location', 'content-length', 'www-authenticate']

const connectFailures = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'])

/** True when the error (or one of its causes) says the connection was never made. */
export function isConnectFailure(error: unknown): boolean {
  for (let e: unknown = error; typeof e === 'object' && e !== null; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && connectFailures.has(code)) return true
  }
  return false
}

export class Forwarder {
  private pool: Pool | undefined
  private origin: string | undefined
  private readonly peers: PeerCredentials | undefined

  /** `peers`: this node's proof and TLS towards the master; the client's own credentials travel too. */
  constructor(peers?: PeerCredentials) {
    this.peers = peers
  }

  /** `epoch`: the highest epoch this replica knows, sent along so a deposed master learns it. */
  async forward(masterUrl: string, request: FastifyRequest, reply: FastifyReply, body: string | undefined, epoch?: number): Promise<FastifyReply> {
    const pool = this.poolFor(masterUrl)
    try {
      // The master checks the client's permissions again, from the client's own credentials.
      const headers: Record<string, string> = { ...this.peers?.headers, 'x-tandem-forwarded': '1' }
      const authorization = request.headers.authorization
      if (authorization !== undefined) headers['authorization'] = authorization
      if (epoch !== undefined) headers['x-tandem-epoch'] = String(epoch)
      const contentType = request.headers['content-type']
      if (contentType !== undefined) headers['content-type'] = contentType
      const key = request.headers['idempotency-key']
      if (typeof key === 'string') headers['idempotency-key'] = key
      const response = await pool.request({
        method: request.method as 'GET' | 'POST',
        path: request.url,
        headers,
        body: body ?? null,
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      })
      reply.status(response.statusCode)
      for (const name of relayedHeaders) {
        const value = response.headers[name]
        if (typeof value === 'string') reply.header(name, value)
      }
      reply.header('x-tandem-served-by', masterUrl)
      return reply.send(response.body)
    } catch (error) {
      // Only a failure to connect proves the master never saw the request. After that, a write
      // may have been applied: say so, and never with a 503 (which promises nothing was applied).
      if (request.method === 'GET' || isConnectFailure(error)) {
        throw new TandemError('NO_MASTER', `the master at ${masterUrl} is not reachable: ${messageOf(error)}`, { masterUrl })
      }
      throw new TandemError('MASTER_ANSWER_LOST', `the master at ${masterUrl} did not answer a forwarded write (${messageOf(error)}): it may or may not have been applied; retry only with the same Idempotency-Key`, { masterUrl })
    }
  }

  private poolFor(masterUrl: string): Pool {
    const origin = new URL(masterUrl).origin
    if (this.pool === undefined || this.origin !== origin) {
      void this.pool?.close()
      this.pool = new Pool(origin, { connections: 64, pipelining: 1, keepAliveTimeout: 10_000, connect: { ...this.peers?.tls } })
      this.origin = origin
    }
    return this.pool
  }

  async close(): Promise<void> {
    await this.pool?.close()
  }
}
