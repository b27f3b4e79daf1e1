/**
 * What a node presents when it connects to another node: the cluster secret's token (or, for an
 * embedded replica, a user's Basic credentials) on every request and WebSocket, and its TLS
 * material: the CA that signs the other nodes' certificates, and with mutual TLS its own
 * certificate. Every node-to-node request (replication stream, snapshot, promotion survey, fence,
 * follow, forwarded client requests) goes through one of these.
 */
import { Agent, fetch as undiciFetch, type RequestInit, type Response } from 'undici'
import { nodeTokenHeader, type ClusterSecret } from './cluster-secret.ts'
import type { TlsFiles } from './tls-files.ts'

export interface PeerTls {
  ca?: Buffer | string
  cert?: Buffer | string
  key?: Buffer | string
}

/** A node's TLS as the client side of its connections: the CA, and its certificate under mutual TLS. */
export function peerTlsOf(tls: TlsFiles | undefined): PeerTls {
  if (tls === undefined) return {}
  return { ...(tls.ca === undefined ? {} : { ca: tls.ca }), ...(tls.clientAuth ? { cert: tls.cert, key: tls.key } : {}) }
}

export class PeerCredentials {
  /** Headers every request to a peer carries. */
  readonly headers: Readonly<Record<string, string>>
  readonly tls: PeerTls
  /** This node sends a cluster secret's token: a bearer proof, never to be sent to a server a user named. */
  get provesNode(): boolean {
    return nodeTokenHeader in this.headers
  }

  /** For one-off requests (fetch); pools of their own take `tls` as their connect options. */
  readonly dispatcher: Agent

  constructor(options: { secret?: ClusterSecret | undefined; tls?: PeerTls | undefined; authorization?: string | undefined } = {}) {
    const headers: Record<string, string> = {}
    if (options.secret !== undefined) headers[nodeTokenHeader] = options.secret.token
    if (options.authorization !== undefined) headers['authorization'] = options.authorization
    this.headers = headers
    const tls = { ...options.tls }
    this.tls = tls
    this.dispatcher = new Agent({ connect: { ...tls }, keepAliveTimeout: 4_000 })
  }

  /** fetch() to a peer, with this node's headers and TLS. */
  fetch(url: string, init: RequestInit = {}): Promise<Response> {
    return undiciFetch(url, { ...init, headers: { ...this.headers, ...(init.headers as Record<string, string> | undefined) }, dispatcher: this.dispatcher })
  }

  /** Options for a `ws` WebSocket to a peer. */
  webSocketOptions(): { headers: Record<string, string> } & PeerTls {
    return { headers: { ...this.headers }, ...this.tls }
  }

  async close(): Promise<void> {
    await this.dispatcher.close()
  }
}
