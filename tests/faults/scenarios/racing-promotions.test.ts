/**
 * (i) Two promotions racing, 20 times under load, every write with sync=1: the master is killed
 * and both replicas are told to promote themselves at the same moment. Each node accepts one
 * candidate per epoch and a promotion needs a majority, so exactly one wins each time; the other
 * is refused, naming the winner. The killed master comes back as a replica of the winner.
 * Acknowledged writes must all survive, no two masters may acknowledge in one epoch, and the
 * nodes must end on one history. Before, both promotions won in 15 of 15 trials.
 */
import { test } from 'node:test'
import { PromotionError } from '../fault-cluster.ts'
import type { PromotionRecord } from '../history.ts'
import { allRules, assertContinued, assertNone, runScenario } from '../scenario.ts'

const trials = 20

test(`(i) two promotions racing, ${trials} times under load with sync=1: one winner each time, nothing lost, no fork`, { timeout: 300_000 }, async () => {
  const result = await runScenario({
    name: `i. 2 promotions racing ×${trials} (sync=1)`,
    cluster: { replicas: 2 },
    workload: { httpClients: 4, tandemClients: 1, sync: 1, syncTimeoutMs: 1500 },
    warmupMs: 1000,
    fault: async ({ faults, random, sleep }) => {
      for (let trial = 1; trial <= trials; trial++) {
        await sleep(random.int(100, 400))
        const master = await faults.master()
        await faults.kill(master)
        const candidates = faults.nodes.filter((n) => n !== master)
        const outcomes = await Promise.allSettled(candidates.map((node) => faults.promote(node)))
        const won = outcomes.flatMap<PromotionRecord>((o) => (o.status === 'fulfilled' ? [o.value] : []))
        const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []))
        if (won.length !== 1) throw new Error(`trial ${trial}: ${won.length} of 2 racing promotions won: ${refused.map(String).join(' | ')}`)
        const winner = won[0]!.node
        const refusal = refused[0]
        if (!(refusal instanceof PromotionError) || refusal.status !== 409 || !refusal.body.includes(winner)) {
          throw new Error(`trial ${trial}: the losing promotion did not name the winner ${winner}: ${String(refusal)}`)
        }
        await faults.restart(master, { role: 'replica', masterUrl: winner })
        for (const node of faults.nodes) if (node.url !== winner) await faults.following(node, winner)
      }
    },
    // Long enough for the clients to find the last master (their cooldown of a failed node is 1 s).
    afterMs: 2500,
  })
  assertNone(result, allRules)
  assertContinued(result)
})
