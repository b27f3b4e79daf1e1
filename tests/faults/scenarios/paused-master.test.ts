/**
 * (d) SIGSTOP the master past a promotion, then SIGCONT it while clients still talk to it.
 *
 * The master runs with --sync-replicas 1 (and every write asks sync=1). While it is stopped
 * the most up-to-date replica is promoted and tells the other replica (and, once it can be
 * reached, the old master) to follow it. Two raw clients are pinned to the old master: they
 * keep writing to it before, during and after the pause, as a client with a stale view of the
 * cluster would. Once resumed, the deposed master must not acknowledge anything (split-brain
 * acks 0), nothing acknowledged may be lost, and after it is told to follow the new master it
 * discards what it wrote past the fork and converges.
 */
import { test } from 'node:test'
import type { NodeProcess } from '../../harness/node-process.ts'
import { allRules, assertContinued, assertNone, runScenario } from '../scenario.ts'

test('(d) SIGSTOP the master past a promotion, SIGCONT it while clients talk to it: no split-brain ack', { timeout: 120_000 }, async () => {
  let paused: NodeProcess | undefined
  const result = await runScenario({
    name: 'd. SIGSTOP master past promotion',
    cluster: { replicas: 2, masterArgs: ['--sync-replicas', '1', '--sync-timeout-ms', '1500'] },
    workload: { httpClients: 3, pinned: { clients: 2 }, tandemClients: 1, sync: 1, syncTimeoutMs: 1500 },
    warmupMs: 1200,
    fault: async ({ faults, random, sleep }) => {
      paused = faults.cluster.master
      faults.pause(paused)
      await sleep(random.int(200, 500))
      await faults.promoteMostUpToDate()
      // Clients of the new master carry on; the pinned ones time out against the stopped one.
      await sleep(random.int(500, 1200))
      faults.resume(paused)
    },
    afterMs: 2000,
    heal: async ({ faults }) => {
      const master = await faults.master()
      // The new master keeps telling the old one to follow it; the operator may as well.
      await faults.follow(paused!, master.url).catch(() => undefined)
      await faults.following(paused!, master.url)
    },
  })
  assertNone(result, allRules)
  assertContinued(result)
})
