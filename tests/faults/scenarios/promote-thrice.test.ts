/**
 * (e) Promote three times in a row under load, every write with sync=1: each time the most
 * up-to-date replica becomes the master while the old master is still up and taking writes;
 * the promoted node tells the others, the old master included, to follow it. Acknowledged
 * writes must all survive, and no deposed master may acknowledge after a promotion.
 */
import { test } from 'node:test'
import { allRules, assertContinued, assertNone, runScenario } from '../scenario.ts'

test('(e) promote three times in a row under load with sync=1: nothing lost, no split brain', { timeout: 150_000 }, async () => {
  const result = await runScenario({
    name: 'e. promote 3 times (sync=1)',
    cluster: { replicas: 2 },
    workload: { httpClients: 4, tandemClients: 1, sync: 1, syncTimeoutMs: 1500 },
    warmupMs: 1000,
    fault: async ({ faults, random, sleep }) => {
      for (let i = 0; i < 3; i++) {
        await sleep(random.int(300, 900))
        const promotion = await faults.promoteMostUpToDate()
        // The new master tells the old one and the other replica; wait until both stream from it.
        for (const node of faults.nodes) if (node.url !== promotion.node) await faults.following(node, promotion.node)
      }
    },
    // Long enough for the clients to find the last master (their cooldown of a failed node is 1 s).
    afterMs: 2500,
  })
  assertNone(result, allRules)
  assertContinued(result)
})
