/**
 * A node's TLS material (--tls-cert, --tls-key, --tls-ca, --tls-client-auth), read once at start.
 * The same certificate serves HTTPS and, with mutual TLS, is what the node presents when it
 * connects to another node.
 */
import { readFileSync } from 'node:fs'
import { TandemError, messageOf } from '../shared/errors.ts'

export interface TlsFiles {
  cert: Buffer
  key: Buffer
  /** Trusted CAs for peers (and, with clientAuth, for clients); undefined: the system's. */
  ca: Buffer | undefined
  /** Mutual TLS: every connection must present a certificate signed by `ca`. */
  clientAuth: boolean
}

export interface TlsPaths {
  certFile?: string
  keyFile?: string
  caFile?: string
  clientAuth?: boolean
}

function read(file: string, flag: string): Buffer {
  try {
    return readFileSync(file)
  } catch (error) {
    throw new TandemError('BAD_REQUEST', `cannot read ${flag} ${file}: ${messageOf(error)}`)
  }
}

/** Undefined without --tls-cert; throws on half a configuration. */
export function loadTlsFiles(paths: TlsPaths): TlsFiles | undefined {
  if (paths.certFile === undefined && paths.keyFile === undefined) {
    if (paths.clientAuth === true) throw new TandemError('BAD_REQUEST', '--tls-client-auth needs --tls-cert, --tls-key and --tls-ca')
    return undefined
  }
  if (paths.certFile === undefined || paths.keyFile === undefined) throw new TandemError('BAD_REQUEST', 'TLS needs both --tls-cert and --tls-key')
  if (paths.clientAuth === true && paths.caFile === undefined) throw new TandemError('BAD_REQUEST', '--tls-client-auth needs --tls-ca: the CA that signs the nodes\' certificates')
  return {
    cert: read(paths.certFile, '--tls-cert'),
    key: read(paths.keyFile, '--tls-key'),
    ca: paths.caFile === undefined ? undefined : read(paths.caFile, '--tls-ca'),
    clientAuth: paths.clientAuth === true,
  }
}
