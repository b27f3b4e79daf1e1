/**
 * (c) kill -9 replicas and restart them under load: one at a time (three times), then both at once. The
 * master never stops, so nothing may be lost, and every replica must come back to the
 * master's exact state (a replica resumes from its own log, atomically with its data).
 */
import { test } from 'node:test'
import { allRules, assertNone, runScenario } from '../scenario.ts'

test('(c) kill -9 replicas and restart them under load: nothing lost, no divergence', { timeout: 120_000 }, async () => {
  const result = await runScenario({
    name: 'c. kill -9 replicas, restart',
    cluster: { replicas: 2 },
    workload: { httpClients: 4, tandemClients: 1 },
    warmupMs: 1000,
    fault: async ({ faults, random, sleep }) => {
      const replicas = faults.cluster.replicas
      for (const round of [0, 1, 2, 3]) {
        const victims = round < 3 ? [random.pick(replicas)] : replicas
        for (const victim of victims) await faults.kill(victim)
        await sleep(random.int(100, 600))
        for (const victim of victims) await faults.restart(victim)
        await sleep(random.int(300, 800))
      }
    },
    afterMs: 1000,
  })
  assertNone(result, allRules)
})
