/**
 * The cluster secret: a file every node of a cluster is given (--cluster-secret-file). A node
 * proves it belongs by sending a token derived from it on every request it makes to another
 * node (header `x-tandem-node-token`); the secret itself never travels. The token is the same on
 * every request, so a network that can be read needs TLS too (README, Security).
 *
 * Token: hex(HMAC-SHA256(secret, "tandem cluster node v1")). The file's content is the secret,
 * surrounding whitespace trimmed; at least 16 bytes.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { TandemError, messageOf } from '../shared/errors.ts'

export const nodeTokenHeader = 'x-tandem-node-token'
const secretBytesMin = 16

export class ClusterSecret {
  /** What this node sends. */
  readonly token: string
  private readonly tokenBytes: Buffer

  constructor(secret: string) {
    if (Buffer.byteLength(secret) < secretBytesMin) {
      throw new TandemError('BAD_REQUEST', `the cluster secret must be at least ${secretBytesMin} bytes (make one with: openssl rand -base64 32 > cluster-secret)`)
    }
    this.token = createHmac('sha256', secret).update('tandem cluster node v1').digest('hex')
    this.tokenBytes = Buffer.from(this.token)
  }

  static load(file: string): ClusterSecret {
    let text: string
    try {
      text = readFileSync(file, 'utf8').trim()
    } catch (error) {
      throw new TandemError('BAD_REQUEST', `cannot read the --cluster-secret-file ${file}: ${messageOf(error)}`)
    }
    return new ClusterSecret(text)
  }

  /** Does a received token prove the same secret? */
  accepts(token: string | undefined): boolean {
    if (token === undefined || token.length !== this.token.length) return false
    return timingSafeEqual(Buffer.from(token), this.tokenBytes)
  }
}
