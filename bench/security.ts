/**
 * What the trust boundary costs: the same cluster (a master and 2 replicas, synchronous=full)
 * with --auth (a scrypt-hashed password, HTTP Basic on every request), a cluster secret and TLS
 * (HTTPS for clients, WSS between nodes), beside one without them, back to back in each
 * repetition: 64-connection HTTP writes on the master and point reads on a replica.
 *
 * Estimate before measuring: a verified credential is a map lookup (users.ts caches it), the
 * Host/Origin checks a few string compares; TLS on a keep-alive connection costs AES-GCM over
 * ~200 bytes each way (well under 1 µs with AES-NI) plus the extra copies through the TLS
 * socket, ~3–6 µs per request on the node and as much on the load generator, which shares the
 * 2 cores. Replication over WSS adds the same per frame, but frames carry many entries. Expected:
 * writes ~0.85–0.95×, point reads (~25 µs of CPU each) ~0.8–0.9×.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { Agent } from 'undici'
import { makeCertificates } from '../tests/harness/certificates.ts'
import { hashPassword } from '../src/security/index.ts'
import { startHttpFloor, type ScriptServer } from './http-floor.ts'
import { closedLoop } from './http-load.ts'
import { call, measurePair, pointReadIds, readPaths, startPairedCluster, type PairResult, type PairSettings, type Samples } from './paired-clusters.ts'
import { figure, type Figure } from './report.ts'
import type { Resources } from './resources.ts'

export type SecuritySettings = PairSettings

export interface SecurityResult extends PairResult<'open' | 'secured'> {
  /** The stack alone: a bare node:http server answering a read's bytes over HTTP (open) and HTTPS (secured). */
  floor: Samples<'open' | 'secured'>
}

const user = { username: 'bench', password: 'bench-password-0123' }

export async function measureSecurity(resources: Resources, s: SecuritySettings, log: (line: string) => void): Promise<SecurityResult> {
  const dir = resources.path('security-files')
  mkdirSync(dir, { recursive: true })
  const certificates = makeCertificates(dir, 'bench')
  writeFileSync(`${dir}/users.json`, JSON.stringify([{ ...user, password: await hashPassword(user.password), perms: ['all'] }]))
  writeFileSync(`${dir}/cluster-secret`, 'a bench cluster secret, long enough\n')
  const securedArgs = ['--auth', `${dir}/users.json`, '--cluster-secret-file', `${dir}/cluster-secret`, '--tls-cert', certificates.cert, '--tls-key', certificates.key, '--tls-ca', certificates.ca]
  const authorization = `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`
  const dispatcher = new Agent({ connect: { ca: readFileSync(certificates.ca) } })
  const floors: ScriptServer[] = []
  try {
    const open = await startPairedCluster(resources, { name: 'security-open', args: [], headers: {}, dispatcher: undefined })
    const secured = await startPairedCluster(resources, { name: 'security-secured', args: securedArgs, headers: { authorization }, dispatcher })
    if (!secured.master.url.startsWith('https:')) throw new Error(`the secured master serves ${secured.master.url}, not HTTPS`)
    const readAnswer = await call(`${open.replicas[0]!.url}${readPaths[0]!}`, open)
    floors.push(await startHttpFloor(resources, readAnswer.text))
    floors.push(await startHttpFloor(resources, readAnswer.text, certificates))
    const [plainFloor, secureFloor] = floors.map((f) => f.url) as [string, string]
    const floor: Samples<'open' | 'secured'> = { open: [], secured: [] }
    const result = await measurePair(
      s,
      { open, secured },
      (rep, r) =>
        log(
          `security ${rep + 1}/${s.reps}: writes ${Math.round(r.writes.secured.at(-1)!)} vs ${Math.round(r.writes.open.at(-1)!)}/s, ` +
            `reads ${Math.round(r.reads.secured.at(-1)!)} vs ${Math.round(r.reads.open.at(-1)!)}/s, floor ${Math.round(floor.secured.at(-1)!)} vs ${Math.round(floor.open.at(-1)!)}/s`,
        ),
      async (order) => {
        for (const name of order) floor[name].push((await closedLoop(name === 'open' ? plainFloor : secureFloor, { connections: s.connections, durationSec: s.seconds, paths: ['/'] })).perSec)
      },
    )
    return { ...result, floor }
  } finally {
    for (const f of floors) await f.stop()
    await dispatcher.close()
  }
}

export function securityFigures(r: SecurityResult, s: SecuritySettings): Figure[] {
  return [
    figure('security_floor', `The stack alone: a bare node:http server answering a read's bytes over HTTPS, ${s.connections} connections`, 'req/s', r.floor.secured, [
      { label: 'the same server over plain HTTP', unit: 'req/s', samples: r.floor.open },
    ]),
    figure('security_writes', `HTTP writes with --auth, a cluster secret and TLS, ${s.connections} clients`, 'tx/s', r.writes.secured, [
      { label: `the same cluster without them, ${s.connections} clients`, unit: 'tx/s', samples: r.writes.open },
    ]),
    figure('security_reads', `HTTP point reads on a replica with --auth, a cluster secret and TLS, ${s.connections} connections`, 'reads/s', r.reads.secured, [
      { label: `the same replica's cluster without them, ${s.connections} connections`, unit: 'reads/s', samples: r.reads.open },
    ]),
    figure('security_write_cpu', 'The master\'s CPU per write with --auth, a cluster secret and TLS', 'µs', r.writeCpuUs.secured, [
      { label: 'the same without them', unit: 'µs', samples: r.writeCpuUs.open },
    ]),
    figure('security_read_cpu', 'The replica\'s CPU per point read with --auth, a cluster secret and TLS', 'µs', r.readCpuUs.secured, [
      { label: 'the same without them', unit: 'µs', samples: r.readCpuUs.open },
    ]),
  ]
}

export function securityNote(s: SecuritySettings): string {
  return `Security: two clusters of a master and 2 replicas (synchronous=full), one started with --auth (one user, its password a scrypt hash, sent as HTTP Basic on every request), --cluster-secret-file and --tls-cert/--tls-key/--tls-ca (HTTPS for clients, WSS and HTTPS between nodes), the other with none of them; autocannon with ${s.connections} keep-alive connections, ${s.seconds} s per run, the two clusters alternating first in each repetition. Writes: one-row INSERTs on the master. Reads: point reads by primary key over ${pointReadIds} ids on the first replica, level=none. CPU per request: the serving node's user + system time (/proc) over the run ÷ the requests answered. The stack alone: a process serving the replica's answer to the first read, byte for byte, over HTTP, and one over HTTPS with the same certificate, measured right after the clusters in each repetition. autocannon runs in the bench process on the same 2 cores, so TLS costs twice on the machine: once in the node, once in the load generator.`
}
