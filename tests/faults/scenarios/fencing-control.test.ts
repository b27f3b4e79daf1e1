/**
 * The negative control: a scenario the checker must fail when fencing is off.
 *
 * The story: the master is killed and a replica promoted (epoch 2). The old master's machine
 * comes back at a new address, with its data and its old idea of being the master of epoch 1;
 * nobody tells it otherwise, since nobody knows the address. Two clients with a stale
 * configuration write to it, with sync=1. Then an operator re-attaches the other replica
 * (which has followed epoch 2) to it with `POST /cluster/follow`.
 *
 * With fencing, the replica refuses to follow a master of an older epoch than it has seen, so
 * the old master never gets a confirmation and acknowledges nothing (its writes end as 202
 * SYNC_TIMEOUT: indeterminate), and the run is clean. With TANDEM_UNSAFE_DISABLE_FENCING=1 on
 * every node, the replica follows it, confirms its writes, and the old master acknowledges
 * writes in epoch 2's time that the healed cluster then discards: the checker must report
 * split-brain acknowledgements and lost writes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { NodeProcess } from '../../harness/node-process.ts'
import { allRules, assertNone, runScenario, type ScenarioOptions } from '../scenario.ts'

function oldMasterBack(name: string, env: Record<string, string>): ScenarioOptions {
  let oldMaster: NodeProcess | undefined
  let promoted = ''
  return {
    name,
    cluster: { replicas: 2, env },
    workload: { httpClients: 3, pinned: { clients: 2, url: (faults) => (oldMaster ?? faults.cluster.master).url }, tandemClients: 1, sync: 1, syncTimeoutMs: 1000 },
    warmupMs: 1000,
    fault: async ({ faults, random, sleep }) => {
      const killed = faults.cluster.master
      await faults.kill(killed)
      await sleep(random.int(100, 300))
      promoted = (await faults.promoteMostUpToDate()).node
      const other = faults.cluster.replicas.find((r) => r.url !== promoted)!
      await faults.following(other, promoted)
      await sleep(random.int(200, 500))
      oldMaster = await faults.restartElsewhere(killed)
      // The operator's mistake: re-attach the replica to the old master.
      await faults.follow(other, oldMaster.url).catch((error: unknown) => faults.history.fault('follow', other.url, `refused: ${String(error)}`))
    },
    afterMs: 2500,
    heal: async ({ faults }) => {
      for (const node of faults.nodes) {
        if (node.url === promoted) continue
        await faults.follow(node, promoted).catch(() => undefined)
        await faults.following(node, promoted)
      }
    },
  }
}

test('with fencing, a replica refuses the deposed master and the run is clean', { timeout: 120_000 }, async () => {
  const result = await runScenario(oldMasterBack('n1. old master back, fenced', {}))
  const refused = result.history.faults.some((f) => f.what === 'follow' && f.detail?.startsWith('refused') === true)
  assert.ok(refused, `the replica followed the deposed master although fencing is on:\n${result.logs}`)
  assertNone(result, allRules)
})

test('negative control: with fencing disabled the checker reports split-brain acknowledgements and lost writes', { timeout: 120_000 }, async () => {
  const result = await runScenario(oldMasterBack('n2. same, FENCING DISABLED', { TANDEM_UNSAFE_DISABLE_FENCING: '1' }))
  const { counts } = result.report
  assert.ok(
    counts['split-brain-ack'] > 0 && counts.lost > 0,
    `the checker found ${counts['split-brain-ack']} split-brain acks and ${counts.lost} lost writes with fencing disabled; the negative control must fail it (seed ${result.seed})\n${result.logs}`,
  )
})
