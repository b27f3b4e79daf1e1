/**
 * Three machines and etcd (issue 17, part 4): each node in a network namespace of its own, with
 * its own address, reached through a bridge on the host where etcd and the test run; nodes prove
 * themselves to each other with the cluster secret, as across real machines. The master's
 * machine loses its link (a partition as everyone else sees it): it stops acknowledging, a
 * replica takes over, and when the link heals the old master rejoins as a replica of the new one
 * by itself, with one history. Needs root for `ip netns` (CI runs as root).
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitFor } from '../harness/cluster.ts'
import { call } from '../harness/http.ts'
import { oneHistory, valuesOf, writeAcknowledged } from './writes.ts'
import { Etcd } from '../harness/etcd.ts'
import { NetworkLab } from '../harness/netns.ts'
import { NodeProcess } from '../harness/node-process.ts'
import { writeSecret, writeUsers } from '../harness/auth.ts'

const cleanups: (() => Promise<void> | void)[] = []
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

/** A write sent from inside a namespace (a client on that machine), by a node child process there. */
function inNamespace(netns: string, url: string, statements: unknown[]): { status: number; body: Record<string, unknown> } {
  const script = `fetch(process.argv[1] + '/db/execute', { method: 'POST', headers: { 'content-type': 'application/json' }, body: process.argv[2], signal: AbortSignal.timeout(10000) })
    .then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.json() })), (e) => console.log(JSON.stringify({ status: 0, body: { code: String(e) } })))`
  const output = execFileSync('ip', ['netns', 'exec', netns, process.execPath, '-e', script, url, JSON.stringify(statements)], { encoding: 'utf8', timeout: 20_000 })
  return JSON.parse(output) as { status: number; body: Record<string, unknown> }
}

async function status(node: NodeProcess): Promise<{ role: string; masterUrl: string | undefined } | undefined> {
  const reply = await call('GET', `${node.url}/status`, undefined, { signal: AbortSignal.timeout(2000) }).catch(() => undefined)
  return reply?.status === 200 ? { role: reply.json.role, masterUrl: reply.json.replication?.master_url } : undefined
}

test("three machines: the master's machine cut off stops acknowledging, a replica takes over, and when the link heals the old master follows it with one history", async () => {
  const lab = NetworkLab.create(3)
  cleanups.push(() => lab.destroy())
  const etcd = await Etcd.start(lab.hostAddress)
  cleanups.push(() => etcd.stop())
  const dir = mkdtempSync(join(tmpdir(), 'tandem-netns-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  // Listening beyond loopback takes users and a cluster secret: anonymous clients may do
  // anything here, nodes must prove the secret to each other.
  const common = ['--auth', writeUsers(dir, 'users', [{ username: '*', perms: ['all'] }]), '--cluster-secret-file', writeSecret(dir, 'secret', 'netns-cluster-secret'), '--coordinator', etcd.url, '--coordinator-ttl', '2s']
  const nodes: NodeProcess[] = []
  cleanups.push(() => Promise.all(nodes.map((n) => n.kill('SIGKILL'))).then(() => undefined))
  const machine = (i: number) => ({ netns: lab.namespaces[i]!, dataDir: join(dir, `node${i + 1}`), args: [...common, '--host', lab.address(i)] })
  const old = await NodeProcess.start({ role: 'master', ...machine(0) })
  nodes.push(old)
  assert.equal(new URL(old.url).hostname, lab.address(0), 'the master serves on its own machine\'s address')
  await waitFor(async () => ((await call('GET', `${old.url}/readyz`)).status === 200 ? true : undefined), 20_000, () => old.log.slice(-10).join('\n'))
  for (const i of [1, 2]) nodes.push(await NodeProcess.start({ role: 'replica', masterUrl: old.url, ...machine(i) }))
  const acknowledged = await writeAcknowledged(old.url, 20)

  lab.cut(0)
  const replicas = nodes.slice(1)
  const master = await waitFor(async () => {
    const states = await Promise.all(replicas.map(status))
    const masters = replicas.filter((_, i) => states[i]?.role === 'master')
    if (masters.length !== 1) return undefined
    const other = replicas.find((r) => r !== masters[0])!
    return states[replicas.indexOf(other)]?.masterUrl === masters[0]!.url ? masters[0] : undefined
  }, 30_000, () => nodes.map((n) => `--- ${n.url}\n${n.log.slice(-6).join('\n')}`).join('\n'))
  const afterCut = await waitFor(async () => {
    const reply = await call('POST', `${master.url}/db/execute?sync=1`, [['INSERT INTO t(v) VALUES (?)', 'after the cut']])
    return reply.status === 200 ? reply : undefined
  }, 20_000, () => 'a write on the new master')
  assert.equal(afterCut.json.sync?.confirmed, 1)
  acknowledged.push('after the cut')
  // A client on the old master's own machine still reaches it: it must not acknowledge.
  const local = inNamespace(lab.namespaces[0]!, old.url, [['INSERT INTO t(v) VALUES (?)', 'on the cut-off master']])
  assert.notEqual(local.status, 200, `the cut-off master must not acknowledge: ${JSON.stringify(local)}`)
  assert.ok(['NO_MASTER', 'LEASE_LOST', 'NOT_MASTER'].includes(String(local.body['code'])), JSON.stringify(local))

  lab.heal(0)
  await waitFor(async () => ((await status(old))?.masterUrl === master.url ? true : undefined), 30_000, () => old.log.slice(-10).join('\n'))
  await oneHistory(nodes, () => 'the three machines converging')
  const values = await valuesOf(old.url)
  assert.deepEqual(values, acknowledged, 'every acknowledged write, on the old master too')
})
