/**
 * (j) and (k): automatic failover on a real etcd started by the scenario; every node runs with
 * --coordinator and a 2 s lease, and nobody promotes anything.
 *
 * (j) kill -9 the master under sync=1 load, twice (the second kill hits a master that took over): a replica takes the master key and
 * becomes master by itself, no acknowledged write is lost, and the killed node, started again
 * as it was, rejoins as a replica of the new master by itself. The time from each kill to the
 * new master being seen is printed (the issue asks for TTL + 2 s; tests assert outcomes, so the
 * figure is reported, and benchmarked in `npm run bench -- --only failover`).
 *
 * (k) and (l) SIGSTOP the master past its lease while two clients stay pinned to it: a replica
 * takes over; once resumed, the old master must acknowledge nothing (split-brain acks 0), and it
 * follows the new master by itself; (k) under sync=1, (l) with asynchronous writes, where the
 * lease is the only thing that stops it.
 */
import { test } from 'node:test'
import { Etcd } from '../../harness/etcd.ts'
import type { NodeProcess } from '../../harness/node-process.ts'
import { History } from '../history.ts'
import type { Rule } from '../fault-checker.ts'
import { allRules, assertContinued, assertNone, runScenario, type ScenarioOptions } from '../scenario.ts'
import { nodeStatus } from '../master-view.ts'

const ttlSeconds = 2

function coordinated(etcd: Etcd, prefix: string): string[] {
  return ['--coordinator', etcd.url, '--coordinator-prefix', prefix, '--coordinator-ttl', `${ttlSeconds}s`]
}

test('(j) kill -9 the master with etcd and sync=1, twice: a replica takes over by itself, nothing acknowledged is lost', { timeout: 150_000 }, async () => {
  const etcd = await Etcd.start()
  const takeoverMs: number[] = []
  try {
    const coordinator = coordinated(etcd, '/faults-j')
    const result = await runScenario({
      name: 'j. etcd: kill -9 master x2 (sync 1)',
      cluster: { replicas: 2, masterArgs: [...coordinator, '--sync-replicas', '1', '--sync-timeout-ms', '1500'], replicaArgs: coordinator },
      workload: { httpClients: 8, writers: 3, tandemClients: 1, thinkMs: 1, sync: 1, syncTimeoutMs: 1500 },
      warmupMs: 1200,
      fault: async ({ faults, random, sleep }) => {
        for (let cycle = 0; cycle < 2; cycle++) {
          if (cycle > 0) await sleep(random.int(400, 900))
          const killed = await faults.master()
          const epoch = (await nodeStatus(killed.url))?.epoch ?? 0
          const killedAt = History.now()
          await faults.kill(killed)
          const takeover = await faults.takenOver(killed, epoch, killedAt)
          takeoverMs.push(takeover.completeAt - killedAt)
          // Started again exactly as it was: it finds the key taken and follows its holder.
          await faults.restart(killed)
          await faults.following(killed, takeover.node)
        }
      },
      afterMs: 1500,
    })
    process.stdout.write(`automatic failover (${ttlSeconds} s lease): kill → new master seen in ${takeoverMs.map((ms) => `${Math.round(ms)} ms`).join(', ')}\n`)
    assertNone(result, allRules)
    assertContinued(result)
  } finally {
    await etcd.stop()
  }
})

/** SIGSTOP the master past its lease while two clients stay pinned to it, then SIGCONT it. */
function pausedPastLease(name: string, etcd: Etcd, prefix: string, sync: boolean, pausedNode: { node?: NodeProcess }): ScenarioOptions {
  const coordinator = coordinated(etcd, prefix)
  return {
    name,
    cluster: { replicas: 2, masterArgs: [...coordinator, ...(sync ? ['--sync-replicas', '1', '--sync-timeout-ms', '1500'] : [])], replicaArgs: coordinator },
    // A deadline longer than the pause: the pinned clients' writes sent to the stopped master
    // are still waiting when it resumes, the first thing it reads.
    workload: { httpClients: 3, pinned: { clients: 2 }, tandemClients: 1, opTimeoutMs: 8000, ...(sync ? { sync: 1, syncTimeoutMs: 1500 } : {}) },
    warmupMs: 1200,
    fault: async ({ faults, random, sleep }) => {
      const paused = faults.cluster.master
      pausedNode.node = paused
      const epoch = (await nodeStatus(paused.url))?.epoch ?? 0
      const pausedAt = History.now()
      faults.pause(paused)
      await faults.takenOver(paused, epoch, pausedAt)
      // Clients of the new master carry on; the pinned ones wait on the stopped one.
      await sleep(random.int(300, 1000))
      faults.resume(paused)
    },
    afterMs: 2000,
    heal: async ({ faults }) => {
      const master = await faults.master()
      await faults.following(pausedNode.node!, master.url, 20_000)
    },
  }
}

test('(k) SIGSTOP the master past its lease with etcd and sync=1, clients pinned to it: nothing lost, it acknowledges nothing once resumed, and follows by itself', { timeout: 120_000 }, async () => {
  const etcd = await Etcd.start()
  try {
    const result = await runScenario(pausedPastLease('k. etcd: SIGSTOP master past lease (sync 1)', etcd, '/faults-k', true, {}))
    assertNone(result, allRules)
    assertContinued(result)
  } finally {
    await etcd.stop()
  }
})

/**
 * Without sync, a resumed master's writes need no replica: only its lease stops it from
 * acknowledging (with the lease checks removed, this scenario counts split-brain acks). Writes
 * acknowledged just before the pause may be on no replica: that loss is async replication's,
 * reported and not asserted, with the read anomalies it brings.
 */
test('(l) SIGSTOP the master past its lease with etcd and async writes: its lease alone keeps it from acknowledging once resumed', { timeout: 120_000 }, async () => {
  const etcd = await Etcd.start()
  try {
    const result = await runScenario(pausedPastLease('l. etcd: SIGSTOP master past lease (async)', etcd, '/faults-l', false, {}))
    const asyncLimits: readonly Rule[] = ['lost', 'read-your-writes', 'monotonic-reads']
    assertNone(result, allRules.filter((rule) => !asyncLimits.includes(rule)))
    assertContinued(result)
  } finally {
    await etcd.stop()
  }
})
