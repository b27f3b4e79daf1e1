/**
 * Test certificates made with openssl: a CA and a certificate it signs for 127.0.0.1 and
 * localhost, usable by a server and as a client certificate (mutual TLS).
 */
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface Certificates {
  /** PEM files. */
  ca: string
  cert: string
  key: string
}

/** Writes `<name>-ca.pem`, `<name>.pem` and `<name>.key` (and their by-products) into `dir`. */
export function makeCertificates(dir: string, name: string): Certificates {
  const at = (file: string) => join(dir, file)
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] })
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  openssl('req', '-x509', ...ec, '-keyout', at(`${name}-ca.key`), '-out', at(`${name}-ca.pem`), '-days', '2', '-subj', `/CN=${name} test CA`)
  openssl('req', ...ec, '-keyout', at(`${name}.key`), '-out', at(`${name}.csr`), '-subj', `/CN=${name} node`)
  writeFileSync(at(`${name}.ext`), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n')
  openssl('x509', '-req', '-in', at(`${name}.csr`), '-CA', at(`${name}-ca.pem`), '-CAkey', at(`${name}-ca.key`), '-CAcreateserial', '-out', at(`${name}.pem`), '-days', '2', '-extfile', at(`${name}.ext`))
  return { ca: at(`${name}-ca.pem`), cert: at(`${name}.pem`), key: at(`${name}.key`) }
}
