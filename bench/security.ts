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
import { Agent, request } from 'undici'
import { waitFor } from '../tests/harness/cluster.ts'
import { makeCertificates } from '../tests/harness/certificates.ts'
import { NodeProcess } from '../tests/harness/node-process.ts'
import { hashPassword } from '../src/security/index.ts'
import { processCpuSeconds } from './cpu.ts'
import { startHttpFloor, type ScriptServer } from './http-floor.ts'
import { closedLoop, type LoadRequest } from './http-load.ts'
import { figure, type Figure } from './report.ts'
import type { Resources } from './resources.ts'
import { createTableSql, insertManyBody, insertOneBody } from './workload.ts'

export interface SecuritySettings {
  reps: number
  seconds: number
  connections: number
}

interface Pair {
  open: number[]
  secured: number[]
}

export interface SecurityResult {
  writes: Pair
  reads: Pair
  /** µs of the serving node's CPU (the master for writes, the replica for reads) per request. */
  writeCpuUs: Pair
  readCpuUs: Pair
  /** The stack alone: a bare node:http server answering a read's bytes over HTTP (open) and HTTPS (secured). */
  floor: Pair
}

interface Setup {
  master: NodeProcess
  replicas: NodeProcess[]
  headers: Record<string, string>
  dispatcher: Agent | undefined
}

const ids = 128
const user = { username: 'bench', password: 'bench-password-0123' }

async function call(url: string, setup: Pick<Setup, 'headers' | 'dispatcher'>, body?: string): Promise<{ status: number; text: string }> {
  const response = await request(url, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { ...setup.headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body }),
    ...(setup.dispatcher === undefined ? {} : { dispatcher: setup.dispatcher }),
  })
  return { status: response.statusCode, text: await response.body.text() }
}

async function startCluster(resources: Resources, name: string, args: string[], setup: Pick<Setup, 'headers' | 'dispatcher'>): Promise<Setup> {
  const master = resources.node(await NodeProcess.start({ role: 'master', dataDir: resources.path(name, 'master'), args: ['--synchronous', 'full', ...args] }))
  const replicas: NodeProcess[] = []
  for (let i = 1; i <= 2; i++) {
    replicas.push(resources.node(await NodeProcess.start({ role: 'replica', dataDir: resources.path(name, `replica${i}`), masterUrl: master.url, args: ['--synchronous', 'full', ...args] })))
  }
  const created = await call(`${master.url}/db/execute`, setup, JSON.stringify([createTableSql]))
  if (created.status !== 200) throw new Error(`${name}: creating the bench table failed: HTTP ${created.status} ${created.text}`)
  const filled = await call(`${master.url}/db/execute`, setup, insertManyBody(ids))
  if (filled.status !== 200) throw new Error(`${name}: filling the bench table failed: HTTP ${filled.status} ${filled.text}`)
  const { lsn } = JSON.parse(filled.text) as { lsn: number }
  for (const replica of replicas) {
    await waitFor(async () => ((await call(`${replica.url}/db/query?level=none&min_lsn=${lsn}&q=SELECT%201`, setup)).status === 200 ? true : undefined), 30_000, () => `${name}: ${replica.url} at LSN ${lsn}`)
  }
  return { master, replicas, ...setup }
}

const readPaths = Array.from({ length: ids }, (_, i) => `/db/query?level=none&q=${encodeURIComponent(`SELECT id, payload FROM bench WHERE id = ${i + 1}`)}`)

export async function measureSecurity(resources: Resources, s: SecuritySettings, log: (line: string) => void): Promise<SecurityResult> {
  const dir = resources.path('security-files')
  mkdirSync(dir, { recursive: true })
  const certificates = makeCertificates(dir, 'bench')
  writeFileSync(`${dir}/users.json`, JSON.stringify([{ ...user, password: await hashPassword(user.password) , perms: ['all'] }]))
  writeFileSync(`${dir}/cluster-secret`, 'a bench cluster secret, long enough\n')
  const securedArgs = ['--auth', `${dir}/users.json`, '--cluster-secret-file', `${dir}/cluster-secret`, '--tls-cert', certificates.cert, '--tls-key', certificates.key, '--tls-ca', certificates.ca]
  const authorization = `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`
  const dispatcher = new Agent({ connect: { ca: readFileSync(certificates.ca) } })
  const floors: ScriptServer[] = []
  try {
    const open = await startCluster(resources, 'security-open', [], { headers: {}, dispatcher: undefined })
    const secured = await startCluster(resources, 'security-secured', securedArgs, { headers: { authorization }, dispatcher })
    if (!secured.master.url.startsWith('https:')) throw new Error(`the secured master serves ${secured.master.url}, not HTTPS`)
    const readAnswer = await call(`${open.replicas[0]!.url}${readPaths[0]!}`, open)
    floors.push(await startHttpFloor(resources, readAnswer.text))
    floors.push(await startHttpFloor(resources, readAnswer.text, certificates))
    const [plainFloor, secureFloor] = floors.map((f) => f.url) as [string, string]
    const result: SecurityResult = { writes: { open: [], secured: [] }, reads: { open: [], secured: [] }, writeCpuUs: { open: [], secured: [] }, readCpuUs: { open: [], secured: [] }, floor: { open: [], secured: [] } }
    /** Requests per second, and µs of the serving node's CPU per request. */
    const load = async (url: string, pid: number | undefined, durationSec: number, work: LoadRequest, headers: Record<string, string>) => {
      const before = processCpuSeconds([pid])
      const run = await closedLoop(url, { connections: s.connections, durationSec, headers, ...work })
      const after = processCpuSeconds([pid])
      return { perSec: run.perSec, cpuUs: before === undefined || after === undefined ? Number.NaN : ((after - before) * 1e6) / run.ok }
    }
    const writes = (setup: Setup, durationSec: number) => load(`${setup.master.url}/db/execute`, setup.master.child?.pid, durationSec, { body: insertOneBody }, setup.headers)
    const reads = (setup: Setup, durationSec: number) => load(setup.replicas[0]!.url, setup.replicas[0]!.child?.pid, durationSec, { paths: readPaths }, setup.headers)
    // Warm both (statement caches, TLS sessions, the credential cache, V8's JIT) before timing.
    for (const setup of [open, secured]) {
      await writes(setup, 1)
      await reads(setup, 1)
    }
    for (let rep = 0; rep < s.reps; rep++) {
      // Alternate which goes first, so a drift in the machine's load does not favour one.
      const order = rep % 2 === 0 ? ([['open', open], ['secured', secured]] as const) : ([['secured', secured], ['open', open]] as const)
      for (const [name, setup] of order) {
        const { perSec, cpuUs } = await writes(setup, s.seconds)
        result.writes[name].push(perSec)
        result.writeCpuUs[name].push(cpuUs)
      }
      for (const [name, setup] of order) {
        const { perSec, cpuUs } = await reads(setup, s.seconds)
        result.reads[name].push(perSec)
        result.readCpuUs[name].push(cpuUs)
      }
      for (const [name] of order) result.floor[name].push((await closedLoop(name === 'open' ? plainFloor : secureFloor, { connections: s.connections, durationSec: s.seconds, paths: ['/'] })).perSec)
      log(
        `security ${rep + 1}/${s.reps}: writes ${Math.round(result.writes.secured.at(-1)!)} vs ${Math.round(result.writes.open.at(-1)!)}/s, ` +
          `reads ${Math.round(result.reads.secured.at(-1)!)} vs ${Math.round(result.reads.open.at(-1)!)}/s, floor ${Math.round(result.floor.secured.at(-1)!)} vs ${Math.round(result.floor.open.at(-1)!)}/s`,
      )
    }
    return result
  } finally {
    for (const floor of floors) await floor.stop()
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
  return `Security: two clusters of a master and 2 replicas (synchronous=full), one started with --auth (one user, its password a scrypt hash, sent as HTTP Basic on every request), --cluster-secret-file and --tls-cert/--tls-key/--tls-ca (HTTPS for clients, WSS and HTTPS between nodes), the other with none of them; autocannon with ${s.connections} keep-alive connections, ${s.seconds} s per run, the two clusters alternating first in each repetition. Writes: one-row INSERTs on the master. Reads: point reads by primary key over ${ids} ids on the first replica, level=none. CPU per request: the serving node's user + system time (/proc) over the run ÷ the requests answered. The stack alone: a process serving the replica's answer to the first read, byte for byte, over HTTP, and one over HTTPS with the same certificate, measured right after the clusters in each repetition. autocannon runs in the bench process on the same 2 cores, so TLS costs twice on the machine: once in the node, once in the load generator.`
}
