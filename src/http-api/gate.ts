/**
 * Who may do what, decided before a request reaches a route (or the fast path, or the
 * replication WebSocket): the node answers only to Host names it serves (so a browser page
 * cannot reach it by DNS rebinding), refuses pages of other origins unless --cors-origin lets
 * them in, identifies the caller, and checks the permission the endpoint needs.
 *
 * Callers: a user (HTTP Basic, users.ts; anonymous without credentials), and other nodes of the
 * cluster, proved by the cluster secret's token (or, with mutual TLS and no secret, by their
 * certificate). A node may do anything on its own behalf; a request a replica forwards for a
 * client is checked again as that client, whose credentials travel with it. Without a secret or
 * mutual TLS (a node on loopback, the open local case) every caller counts as a node.
 */
import type { IncomingMessage } from 'node:http'
import type { TLSSocket } from 'node:tls'
import { TandemError } from '../shared/errors.ts'
import { hasPermission, nodeTokenHeader, type ClusterSecret, type Permission, type Principal, type TlsFiles, type Users } from '../security/index.ts'

export interface GateOptions {
  users: Users
  secret: ClusterSecret | undefined
  tls: TlsFiles | undefined
  /** The address the node listens on. */
  host: string
  /** Origins whose pages may call this node (CORS); others are refused. */
  corsOrigins: readonly string[]
}

export interface Access {
  readonly principal: Principal
  /** Another node of this cluster (or anyone, on an open node). */
  readonly isNode: boolean
  /** Relayed by a replica for a client: permissions are the client's. */
  readonly isForwarded: boolean
}

/** The permission each endpoint needs; undefined: none (an unknown path answers 404). */
export function permissionFor(path: string): Permission | undefined {
  switch (path) {
    case '/db/execute':
      return 'execute'
    case '/db/query':
    case '/db/request':
      return 'query'
    case '/db/backup':
      return 'backup'
    case '/db/load':
      return 'load'
    case '/db/checksum':
    case '/status':
    case '/nodes':
    case '/replication/lag':
      return 'status'
    case '/readyz':
      return 'ready'
    case '/replication':
    case '/replication/snapshot':
      return 'replicate'
    case '/cluster/promote':
    case '/cluster/follow':
    case '/cluster/fence':
      return 'cluster'
    default:
      // A schedule submits jobs: it takes the same permission.
      return path === '/jobs' || path.startsWith('/jobs/') || path === '/schedules' || path.startsWith('/schedules/') ? 'jobs' : undefined
  }
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1'
}

/** The host name of a Host header (`name:port`, `[v6]:port`), lower-cased. */
function hostName(header: string): string {
  const h = header.trim().toLowerCase()
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']'))
  const colon = h.lastIndexOf(':')
  return colon >= 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h
}

export class Gate {
  /** Nodes must prove themselves: a cluster secret or mutual TLS is configured. */
  readonly isSecured: boolean
  private readonly options: GateOptions
  private readonly checksHost: boolean
  private readonly origins: ReadonlySet<string>

  constructor(options: GateOptions) {
    this.options = options
    this.isSecured = options.secret !== undefined || options.tls?.clientAuth === true
    this.checksHost = isLoopbackHost(options.host)
    this.origins = new Set(options.corsOrigins.map((o) => o.replace(/\/+$/, '').toLowerCase()))
  }

  /**
   * Admits a request or refuses it (a TandemError to answer with): Host and Origin first, then
   * the caller's identity. A promise only when credentials must be checked for the first time.
   */
  admit(request: IncomingMessage): Access | TandemError | Promise<Access | TandemError> {
    const headers = request.headers
    const refused = this.refuseBrowser(request)
    if (refused !== undefined) return refused
    const isForwarded = headers['x-tandem-forwarded'] !== undefined
    let isNode: boolean
    if (this.options.secret !== undefined) {
      const token = headers[nodeTokenHeader]
      if (token !== undefined && !this.options.secret.accepts(typeof token === 'string' ? token : token[0])) {
        return new TandemError('UNAUTHORIZED', 'the request carries a cluster node token that does not match this node\'s cluster secret: give every node the same --cluster-secret-file')
      }
      isNode = token !== undefined
    } else if (this.options.tls?.clientAuth === true) {
      isNode = (request.socket as TLSSocket).authorized === true
    } else {
      isNode = true
    }
    const principal = this.options.users.identify(headers.authorization)
    if (principal instanceof Promise) return principal.then((p) => (p instanceof TandemError ? p : { principal: p, isNode, isForwarded }))
    if (principal instanceof TandemError) return principal
    return { principal, isNode, isForwarded }
  }

  /** May `access` do what `permission` allows? */
  can(access: Access, permission: Permission): boolean {
    return (access.isNode && !access.isForwarded) || hasPermission(access.principal, permission)
  }

  /** Throws UNAUTHORIZED (anonymous) or FORBIDDEN (a known user) unless `access` may. */
  require(access: Access, permission: Permission, what: string): void {
    if (this.can(access, permission)) return
    const user = access.principal.user
    if (user === undefined) throw new TandemError('UNAUTHORIZED', `${what} needs the ${permission} permission: send the credentials of a user who has it (HTTP Basic)`)
    throw new TandemError('FORBIDDEN', `user ${user} lacks the ${permission} permission, which ${what} needs`)
  }

  /** Throws unless the caller is another node of this cluster (epochs are raised only by nodes). */
  requireNode(access: Access, what: string): void {
    if (access.isNode && !access.isForwarded) return
    throw new TandemError('FORBIDDEN', `${what} is accepted only from a node of this cluster (one given the same --cluster-secret-file, or a certificate of the cluster's CA)`)
  }

  /** Host (DNS rebinding) and Origin (pages of other sites) checks. */
  private refuseBrowser(request: IncomingMessage): TandemError | undefined {
    const host = request.headers.host
    if (this.checksHost && host !== undefined && !isLoopbackHost(hostName(host))) {
      return new TandemError('FORBIDDEN', `this node listens on ${this.options.host} and does not serve the host name ${JSON.stringify(host)}`)
    }
    const origin = request.headers.origin
    if (origin === undefined || request.method === 'OPTIONS') return undefined
    if (this.allowsOrigin(origin, host)) return undefined
    return new TandemError('FORBIDDEN', `requests from pages of ${origin} are refused: start the node with --cors-origin ${origin} to allow them`)
  }

  private allowsOrigin(origin: string, host: string | undefined): boolean {
    const normalized = origin.toLowerCase()
    if (this.origins.has(normalized) || this.origins.has('*')) return true
    try {
      return host !== undefined && new URL(normalized).host === host.toLowerCase()
    } catch {
      return false
    }
  }

  /** CORS headers for an allowed cross-origin request, or undefined. */
  corsHeaders(request: IncomingMessage): Record<string, string> | undefined {
    const origin = request.headers.origin
    if (origin === undefined) return undefined
    const normalized = origin.toLowerCase()
    if (!this.origins.has(normalized) && !this.origins.has('*')) return undefined
    return {
      'access-control-allow-origin': origin,
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'X-Tandem-Lsn, X-Tandem-Epoch, X-Tandem-Error',
      vary: 'Origin',
    }
  }
}
