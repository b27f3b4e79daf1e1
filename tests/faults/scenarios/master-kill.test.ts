/**
 * (a) and (b): kill -9 the master under load, promote the most up-to-date replica, clients
 * carry on; the killed node is restarted as a replica of the new master and rejoins. Three
 * times in a row, so promoted masters are killed too.
 *
 * With asynchronous replication an acknowledged write may not have reached any replica when
 * the master dies: the suite measures that loss window (entries and ms) and reports it, and
 * asserts only what async replication still promises. With sync=1 (`--sync-replicas 1` on the
 * first master, `sync=1` on every write, since a promoted replica does not inherit the flag)
 * every acknowledged write is on a replica, so nothing acknowledged may be lost, and a killed
 * master that comes back as master cannot acknowledge anything.
 */
import { test } from 'node:test'
import type { Rule } from '../fault-checker.ts'
import { discardedEntries } from '../log-files.ts'
import { allRules, assertContinued, assertNone, runScenario, type ScenarioContext, type ScenarioOptions } from '../scenario.ts'

/**
 * `cycles` times: kill -9 the master, promote the most up-to-date replica, bring the killed
 * node back as a replica of the new master (it discards what it held past the fork).
 */
function masterKill(name: string, masterArgs: string[], sync: number | undefined, cycles: number, exposures: Exposure[] = []): ScenarioOptions {
  return {
    name,
    cluster: { replicas: 2, masterArgs },
    workload: { httpClients: 8, writers: 3, tandemClients: 1, thinkMs: 1, ...(sync === undefined ? {} : { sync, syncTimeoutMs: 1500 }) },
    warmupMs: 1200,
    fault: async ({ faults, random, sleep }: ScenarioContext) => {
      for (let cycle = 0; cycle < cycles; cycle++) {
        if (cycle > 0) await sleep(random.int(400, 900))
        const killed = await faults.master()
        const before = discardedEntries(killed.spec.dataDir).count
        const killedAt = Date.now()
        await faults.kill(killed)
        // The operator notices, then promotes; the promoted node tells the other replica.
        await sleep(random.int(100, 400))
        const promotion = await faults.promoteMostUpToDate()
        await faults.restart(killed, { role: 'replica', masterUrl: promotion.node, args: [] })
        await faults.following(killed, promotion.node)
        // What the killed master had committed that no replica held: it discarded it on rejoining.
        const discarded = discardedEntries(killed.spec.dataDir)
        exposures.push({ entries: discarded.count - before, oldestMs: discarded.count > before && discarded.oldestTime !== undefined ? killedAt - discarded.oldestTime : 0 })
      }
    },
    afterMs: 1500,
  }
}

/** Per kill: entries the master had committed and no replica held, and how long before the kill the oldest was committed. */
interface Exposure {
  entries: number
  oldestMs: number
}

/**
 * What async replication does not promise after a master is lost: its acknowledged writes may
 * be gone, so the sessions that had them read older values; and a killed master that comes
 * back as the master of its old epoch (node.json outlives the command line) may acknowledge
 * writes until it is told to follow (README, Known limits). Reported, not asserted.
 */
const asyncLimits: readonly Rule[] = ['lost', 'read-your-writes', 'monotonic-reads', 'split-brain-ack']

test('(a) kill -9 the master with async replication, three times: the loss window is measured, nothing else breaks', { timeout: 150_000 }, async () => {
  const exposures: Exposure[] = []
  const result = await runScenario(masterKill('a. kill -9 master x3 (async)', [], undefined, 3, exposures))
  const { counts, lostEntries, lossWindowMs } = result.report
  process.stdout.write(
    `async loss window over ${exposures.length} kills: ${counts.lost} acknowledged writes lost (${lostEntries} entries, acknowledged up to ${lossWindowMs} ms before the kill); ` +
      `entries committed on the killed master and on no replica, discarded on rejoin: ${exposures.map((e) => `${e.entries} (oldest ${e.oldestMs >= 0 ? `${Math.round(e.oldestMs)} ms before the kill` : 'committed after the kill: the node came back as a master'})`).join(', ')}\n` +
      result.report.violations.filter((v) => v.rule === 'lost' || v.rule === 'split-brain-ack').map((v) => `  ${v.rule}: ${v.message}\n`).join(''),
  )
  assertNone(result, allRules.filter((rule) => !asyncLimits.includes(rule)))
  assertContinued(result)
})

test('(b) kill -9 the master with sync=1, three times: no acknowledged write is lost', { timeout: 150_000 }, async () => {
  const result = await runScenario(masterKill('b. kill -9 master x3 (sync 1)', ['--sync-replicas', '1', '--sync-timeout-ms', '1500'], 1, 3))
  assertNone(result, allRules)
  assertContinued(result)
})
