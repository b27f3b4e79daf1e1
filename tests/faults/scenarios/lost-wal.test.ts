/**
 * (m) The master comes back with older state: it is killed under load and the newest frames of
 * its WAL are cut off (a disk that acknowledged writes it never made durable), so it restarts
 * without its newest transactions, which the replicas already hold. The replicas are paused
 * meanwhile, until the restarted master has taken new writes at the same LSNs: two histories
 * with the same (epoch, LSN) and different content. When they resume, each must find the fork
 * by its history hashes, keep its entries past it aside, resync, and converge; never stream on
 * over rows that are not the master's (before history hashes they did, silently).
 *
 * The writes the master lost with its WAL are lost: the injected fault breaks the durability
 * the master promised, so `lost` and the read anomalies that follow are reported, not asserted.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Rule } from '../fault-checker.ts'
import { cutWalFrames, discardedEntries } from '../log-files.ts'
import { allRules, assertNone, runScenario } from '../scenario.ts'

test('(m) the master restarted without its newest WAL frames while the replicas hold them: the fork is found and healed', { timeout: 120_000 }, async () => {
  const discarded: number[] = []
  const result = await runScenario({
    name: 'm. master loses WAL tail, replicas ahead',
    cluster: { replicas: 2 },
    workload: { httpClients: 4, writers: 2, tandemClients: 1, thinkMs: 1 },
    warmupMs: 1500,
    fault: async ({ faults, random, sleep }) => {
      const master = faults.cluster.master
      const replicas = faults.cluster.replicas
      await faults.kill(master)
      for (const replica of replicas) faults.pause(replica)
      const cut = cutWalFrames(master.spec.dataDir, random.int(8, 30))
      faults.history.fault('truncate', master.url, `the newest ${cut.cut} WAL frames cut off (${cut.kept} kept)`)
      await faults.restart(master)
      // The master takes new writes at the LSNs it lost, with nobody to stream them to.
      await sleep(random.int(600, 1200))
      for (const replica of replicas) faults.resume(replica)
    },
    afterMs: 2500,
    inspect: ({ faults }) => {
      for (const replica of faults.cluster.replicas) discarded.push(discardedEntries(replica.spec.dataDir).count)
      return Promise.resolve()
    },
  })
  const diskLied: readonly Rule[] = ['lost', 'read-your-writes', 'monotonic-reads']
  assertNone(result, allRules.filter((rule) => !diskLied.includes(rule)))
  process.stdout.write(`lost with the WAL tail: ${result.report.counts.lost} acknowledged writes; entries the replicas kept aside past the fork: ${discarded.join(', ')}\n`)
  assert.ok(discarded.some((n) => n > 0), `a replica held entries the master lost, and kept them aside (seed ${result.seed})\n${result.logs}`)
})
