/**
 * (f) Corrupt and truncate replicas' logs. Both replicas are killed under load; in one, bytes
 * of a recent `_tandem_log.ops` blob are flipped; in the other, the newest log rows are
 * deleted (its data stays ahead of its log). Both restart under load. Each must notice (a
 * checksum that fails, a conflict when entries it already holds arrive again), never apply a
 * corrupted entry or apply one twice, and heal: equal checksums, and a log whose every entry
 * verifies and equals the master's.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { corruptNewestEntry, deleteNewestEntries, logProblems, readLog } from '../log-files.ts'
import { allRules, assertNone, runScenario } from '../scenario.ts'

test('(f) a corrupted and a truncated replica log are detected and healed', { timeout: 120_000 }, async () => {
  let corruptedLsn = 0
  const problems: string[] = []
  const result = await runScenario({
    name: 'f. corrupt + truncate replica logs',
    cluster: { replicas: 2 },
    workload: { httpClients: 3, tandemClients: 1 },
    warmupMs: 1500,
    fault: async ({ faults, random }) => {
      const [corrupted, truncated] = faults.cluster.replicas as [typeof faults.cluster.master, typeof faults.cluster.master]
      await faults.kill(corrupted)
      await faults.kill(truncated)
      const corruption = corruptNewestEntry(corrupted.spec.dataDir, random)
      corruptedLsn = corruption.lsn
      faults.history.fault('corrupt', corrupted.url, corruption.detail)
      const cut = deleteNewestEntries(truncated.spec.dataDir, random.int(1, 8))
      faults.history.fault('truncate', truncated.url, `entries ${cut.fromLsn}..${cut.toLsn} deleted`)
      await faults.restart(corrupted)
      await faults.restart(truncated)
    },
    afterMs: 2500,
    inspect: async ({ faults }) => {
      const [corrupted] = faults.cluster.replicas
      if (!corrupted!.log.some((line) => /corrupt/i.test(line))) problems.push(`${corrupted!.url} never reported its corrupted entry ${corruptedLsn}`)
      // Stop every node (SQLite's WAL makes a killed node's file whole again when opened), then compare the logs on disk with the master's.
      const master = await faults.master()
      for (const node of faults.nodes) await node.kill('SIGKILL')
      const reference = readLog(master.spec.dataDir)
      for (const node of faults.nodes) {
        if (node === master) continue
        for (const problem of logProblems(readLog(node.spec.dataDir), reference)) problems.push(`${node.url}: ${problem}`)
      }
    },
  })
  assertNone(result, allRules)
  assert.deepEqual(problems, [], `seed ${result.seed}\n${result.logs}`)
})
