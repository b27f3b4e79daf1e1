/**
 * (g) Fill a replica's disk, then free it. The replica's data directory lives on its own
 * 32 MiB tmpfs; once it has caught up, a filler file takes every free byte, the master goes on
 * taking writes (each carries 1 KiB of random bytes), and the replica cannot write. Then the
 * filler is deleted: the replica must recover by itself, without a restart, and converge.
 *
 * Needs `mount -t tmpfs` (root; CI runs as root). Skipped, saying why, only when mounting is
 * not permitted.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import type { NodeProcess } from '../../harness/node-process.ts'
import { nodeStatus } from '../master-view.ts'
import { allRules, assertNone, runScenario } from '../scenario.ts'
import { fill, mount, mountPermitted, unmount } from '../small-disk.ts'

test('(g) a replica whose disk fills up recovers and converges once space is freed', { timeout: 120_000 }, async (t) => {
  const refused = mountPermitted()
  if (refused !== undefined) {
    t.skip(`skipped: this environment does not permit mount -t tmpfs (${refused}); run as root to fill a disk`)
    return
  }
  let disk = ''
  let replica: NodeProcess | undefined
  let behind = { replica: 0, master: 0 }
  let survived = false
  /** What the replica said about itself while its disk was full, and once it was freed. */
  let whileFull: { ready: number; state: unknown; problem: unknown } | undefined
  let readyAfter = false
  const result = await runScenario({
    name: 'g. replica disk full, then freed',
    cluster: { replicas: 1 },
    workload: { httpClients: 3, tandemClients: 1, padBytes: 1024, readRatio: 0.2 },
    prepare: async (faults) => {
      disk = join(faults.cluster.dir, 'small-disk')
      mkdirSync(disk)
      const error = mount(disk)
      if (error !== undefined) throw new Error(`mount -t tmpfs failed: ${error}`)
      replica = await faults.cluster.addReplica([], { dataDir: join(disk, 'data') })
    },
    warmupMs: 1000,
    fault: async ({ faults, sleep }) => {
      const filler = join(disk, 'filler')
      const bytes = fill(filler)
      faults.history.fault('fill-disk', replica!.url, `${bytes} bytes of filler`)
      await sleep(2000)
      const [mine, master] = await Promise.all([nodeStatus(replica!.url, 2000), faults.master().then((m) => nodeStatus(m.url, 2000))])
      behind = { replica: mine?.lsn ?? -1, master: master?.lsn ?? -1 }
      const [ready, status] = await Promise.all([
        fetch(`${replica!.url}/readyz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status),
        fetch(`${replica!.url}/status`, { signal: AbortSignal.timeout(2000) }).then((r) => r.json() as Promise<{ replication: { state: unknown; last_problem: unknown } }>),
      ])
      whileFull = { ready, state: status.replication.state, problem: status.replication.last_problem }
      unlinkSync(filler)
      faults.history.fault('free-disk', replica!.url, `replica at LSN ${behind.replica}, master at ${behind.master}`)
    },
    afterMs: 2000,
    inspect: async () => {
      survived = replica!.isRunning
      // Healthy again by itself once it applies: /readyz answers 200 within the bound.
      const deadline = Date.now() + 30_000
      while (!readyAfter && Date.now() < deadline) {
        readyAfter = (await fetch(`${replica!.url}/readyz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0)) === 200
        if (!readyAfter) await new Promise((r) => setTimeout(r, 200))
      }
    },
    cleanup: async (faults) => {
      for (const node of faults.nodes) await node.kill('SIGKILL')
      if (disk !== '') unmount(disk)
    },
  })
  assert.ok(behind.replica < behind.master, `the full disk never held the replica back (replica at ${behind.replica}, master at ${behind.master}): the scenario tested nothing`)
  assert.ok(survived, `the replica exited on a full disk instead of waiting for space:\n${replica!.log.slice(-15).join('\n')}`)
  // Honest health: while it could not apply it said so, and it was not ready.
  assert.equal(whileFull?.ready, 503, `the replica answered /readyz ${whileFull?.ready} with a full disk`)
  assert.equal(whileFull?.state, 'failing')
  assert.match(String(whileFull?.problem), /^cannot apply entries \d+–\d+: /)
  assert.ok(readyAfter, 'the replica never became ready again once its disk had room')
  assertNone(result, allRules)
})
