/**
 * Damage under load (issue 17, part 5), healed from a healthy copy instead of served or retried
 * for ever.
 *
 * (o) One character of a stored row changed in a replica's file (the page stays well formed, no
 * index sees it; nothing ever rewrites that row): the anti-entropy range checks the master writes
 * into its log (every 100 ms here) find it, and the replica resyncs. The bound: one round over
 * the tables, (rows ÷ 1,000 + tables) × the interval. With checks off the same plan ends diverged
 * (the negative control below).
 *
 * (p) A damaged page on one replica (its registers table's root page) and a corrupt entry in the
 * master's log that the other replica, left behind, still needs: the first resyncs when applying
 * reaches the page, the master never sends the corrupt entry and the second gets a snapshot
 * instead; neither loops.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { damageRootPage } from '../../harness/damage.ts'
import { call } from '../../harness/http.ts'
import { waitFor } from '../../harness/cluster.ts'
import type { NodeProcess } from '../../harness/node-process.ts'
import { changeStoredRow, corruptNewestEntry } from '../log-files.ts'
import { allRules, assertNone, runScenario, type ScenarioOptions } from '../scenario.ts'

const snapshotsOf = async (node: NodeProcess): Promise<number> => (await call('GET', `${node.url}/status`)).json.replication?.snapshots_installed ?? 0

function changedRow(name: string, checkInterval: string, changed: { value: string | undefined }): ScenarioOptions {
  return {
    name,
    cluster: { replicas: 2, masterArgs: ['--check-interval', checkInterval] },
    workload: { httpClients: 3, tandemClients: 1 },
    warmupMs: 1500,
    fault: async ({ faults, random }) => {
      const replica = faults.cluster.replicas[0]!
      await faults.kill(replica)
      changed.value = changeStoredRow(replica.spec.dataDir, random)
      assert.ok(changed.value !== undefined, 'a row to change in the replica\'s file')
      faults.history.fault('corrupt', replica.url, `one character of the row of ${changed.value} changed in the file`)
      await faults.restart(replica)
    },
    afterMs: 1500,
  }
}

test('(o) a row changed in a replica\'s file under load is found by anti-entropy, and the replica resyncs', { timeout: 120_000 }, async () => {
  const changed: { value: string | undefined } = { value: undefined }
  const result = await runScenario({
    ...changedRow('o. replica row changed, anti-entropy', '100ms', changed),
    heal: async ({ faults }) => {
      const replica = faults.cluster.replicas[0]!
      await waitFor(async () => ((await snapshotsOf(replica)) >= 1 ? true : undefined), 30_000, () => `the replica to resync:\n${faults.logs(6)}`)
      // The checks are entries of their own, every 100 ms: the final state is read from a master
      // started again without them, or its LSN moves while the nodes are read (found in CI).
      await faults.restart(faults.cluster.master, { args: ['--check-interval', '0'] })
    },
  })
  assertNone(result, allRules)
})

test('(o, negative control) with anti-entropy off the changed row stays: the replica ends diverged', { timeout: 120_000 }, async () => {
  const result = await runScenario(changedRow('o2. same, anti-entropy OFF', '0', { value: undefined }))
  assert.ok(result.report.counts.divergence > 0, `with --check-interval 0 the changed row must go unnoticed (seed ${result.seed})`)
})

test('(p) a damaged page on a replica and a corrupt master log entry a lagging replica needs: both resync from a snapshot, nothing loops', { timeout: 120_000 }, async () => {
  let corruptLsn = 0
  let masterProblem = ''
  const result = await runScenario({
    name: 'p. replica page + master entry corrupt',
    cluster: { replicas: 2 },
    workload: { httpClients: 3, tandemClients: 1 },
    warmupMs: 1500,
    fault: async ({ faults, random, sleep }) => {
      const master = faults.cluster.master
      const [damaged, lagging] = faults.cluster.replicas as [NodeProcess, NodeProcess]
      await faults.kill(damaged)
      damageRootPage(damaged.spec.dataDir, 'fault_registers')
      faults.history.fault('corrupt', damaged.url, 'the root page of fault_registers overwritten')
      await faults.restart(damaged)
      // The other replica falls behind; the master's newest entries are then ones it lacks.
      await faults.kill(lagging)
      await sleep(800)
      await faults.kill(master)
      const corruption = corruptNewestEntry(master.spec.dataDir, random, 1)
      corruptLsn = corruption.lsn
      faults.history.fault('corrupt', master.url, corruption.detail)
      await faults.restart(master)
      await faults.restart(lagging)
    },
    afterMs: 2000,
    heal: async ({ faults }) => {
      for (const replica of faults.cluster.replicas) {
        await waitFor(async () => ((await snapshotsOf(replica)) >= 1 ? true : undefined), 30_000, () => `${replica.url} to resync:\n${faults.logs(6)}`)
      }
    },
    inspect: async ({ faults }) => {
      masterProblem = String((await call('GET', `${faults.cluster.master.url}/status`)).json.master?.last_problem ?? '')
    },
  })
  assertNone(result, allRules)
  assert.match(masterProblem, new RegExp(`log entry ${corruptLsn} fails its checksum`), `the master names its corrupt entry (seed ${result.seed})`)
})
