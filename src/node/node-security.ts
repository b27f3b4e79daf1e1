/**
 * A node's trust configuration, read once at start: its users (--auth), the cluster secret, TLS,
 * and the rule that keeps a node off the network until it is secured (Redis's protected mode):
 * listening beyond loopback needs --auth with a cluster secret, or mutual TLS, unless --insecure.
 */
import { TandemError } from '../shared/errors.ts'
import { ClusterSecret, PeerCredentials, Users, loadTlsFiles, peerTlsOf, type TlsFiles } from '../security/index.ts'
import { Gate, isLoopbackHost } from '../http-api/gate.ts'
import type { NodeConfig } from './config.ts'

export interface NodeSecurity {
  users: Users
  secret: ClusterSecret | undefined
  tls: TlsFiles | undefined
  gate: Gate
  /** What this node presents when it calls another node. */
  peers: PeerCredentials
}

const howToSecure = `Create users and a cluster secret, give every node both, and start it again:
  openssl rand -base64 32 > cluster-secret
  echo '[{"username": "admin", "password": "'"$(openssl rand -hex 12)"'", "perms": ["all"]}]' > users.json
  tandem master … --auth users.json --cluster-secret-file cluster-secret
(or use mutual TLS: --tls-cert, --tls-key, --tls-ca, --tls-client-auth; README, Security). --insecure overrides this check.`

export function loadNodeSecurity(config: NodeConfig): NodeSecurity {
  const users = config.authFile === undefined ? Users.open() : Users.load(config.authFile)
  const secret = config.clusterSecretFile === undefined ? undefined : ClusterSecret.load(config.clusterSecretFile)
  const tls = loadTlsFiles({
    ...(config.tlsCertFile === undefined ? {} : { certFile: config.tlsCertFile }),
    ...(config.tlsKeyFile === undefined ? {} : { keyFile: config.tlsKeyFile }),
    ...(config.tlsCaFile === undefined ? {} : { caFile: config.tlsCaFile }),
    clientAuth: config.tlsClientAuth,
  })
  const mutualTls = tls?.clientAuth === true
  // With users but no way for nodes to prove themselves, a replica could not tell the master it
  // is one, and every caller would pass for a node.
  if (users.isEnabled && secret === undefined) {
    throw new TandemError('BAD_REQUEST', '--auth needs --cluster-secret-file: the nodes prove to each other with it that they belong to the cluster (make one with: openssl rand -base64 32 > cluster-secret, and give it to every node)')
  }
  if (!isLoopbackHost(config.host) && !config.insecure && !((users.isEnabled && secret !== undefined) || mutualTls)) {
    throw new TandemError('BAD_REQUEST', `refusing to listen on ${config.host} without authentication: anyone who can reach it could read, write and take over the cluster.\n${howToSecure}`)
  }
  const gate = new Gate({ users, secret, tls, host: config.host, corsOrigins: config.corsOrigins })
  const peers = new PeerCredentials({ secret, tls: peerTlsOf(tls) })
  return { users, secret, tls, gate, peers }
}
