/**
 * (h) Fill the master's disk, then free it. The master's data directory lives on its own 32 MiB
 * tmpfs. While the disk is full, writes fail with WRITE_FAILED (nothing applied), and the master
 * says so: /readyz answers 503 naming the failure, /status shows it as master.last_problem.
 * Once the filler is deleted the master becomes ready again by itself (it probes its disk: a
 * load balancer that took it out of rotation would never send the write that shows it), and the
 * next write commits and replicates.
 *
 * Needs `mount -t tmpfs` (root; CI runs as root). Skipped, saying why, only when mounting is
 * not permitted.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitFor } from '../../harness/cluster.ts'
import { call } from '../../harness/http.ts'
import { NodeProcess } from '../../harness/node-process.ts'
import { fill, mount, mountPermitted, unmount } from '../small-disk.ts'

test('(h) a master whose disk fills up says so, refuses writes whole, and recovers by itself once space is freed', { timeout: 120_000 }, async (t) => {
  const refused = mountPermitted()
  if (refused !== undefined) {
    t.skip(`skipped: this environment does not permit mount -t tmpfs (${refused}); run as root to fill a disk`)
    return
  }
  const dir = mkdtempSync(join(tmpdir(), 'tandem-master-disk-'))
  const disk = join(dir, 'small-disk')
  mkdirSync(disk)
  const error = mount(disk)
  if (error !== undefined) throw new Error(`mount -t tmpfs failed: ${error}`)
  const nodes: NodeProcess[] = []
  try {
    const master = await NodeProcess.start({ role: 'master', dataDir: join(disk, 'data') })
    nodes.push(master)
    const replica = await NodeProcess.start({ role: 'replica', dataDir: join(dir, 'replica'), masterUrl: master.url })
    nodes.push(replica)
    const created = await call('POST', `${master.url}/db/execute`, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)', 'INSERT INTO t(v) VALUES (randomblob(1024))'])
    assert.equal(created.status, 200, created.text)

    const filler = join(disk, 'filler')
    fill(filler)
    // Writes of 64 KiB each until one fails: the WAL and the log grow into the last free pages.
    let failed: Awaited<ReturnType<typeof call>> | undefined
    for (let i = 0; i < 200 && failed === undefined; i++) {
      const answer = await call('POST', `${master.url}/db/execute`, ['INSERT INTO t(v) VALUES (randomblob(65536))'])
      if (answer.status !== 200) failed = answer
    }
    assert.ok(failed !== undefined, 'the master committed every write on a full disk: the scenario tested nothing')
    assert.equal(failed.status, 503, failed.text)
    assert.equal(failed.json.code, 'WRITE_FAILED')
    const ready = await call('GET', `${master.url}/readyz`)
    assert.equal(ready.status, 503, ready.text)
    assert.match(ready.text, /\[-\]store writes fail: /)
    const status = await call('GET', `${master.url}/status`)
    assert.match(String(status.json.master.last_problem), /^writes fail: /)
    const rowsWhileFull = (await call('GET', `${master.url}/db/query?q=${encodeURIComponent('SELECT count(*) FROM t')}`)).json.results[0].values[0][0] as number

    unlinkSync(filler)
    await waitFor(async () => ((await call('GET', `${master.url}/readyz`)).status === 200 ? true : undefined), 30_000, () => 'the master ready again once its disk had room')
    const after = await call('POST', `${master.url}/db/execute`, ["INSERT INTO t(v) VALUES ('after')"])
    assert.equal(after.status, 200, after.text)
    const count = await call('GET', `${master.url}/db/query?q=${encodeURIComponent('SELECT count(*) FROM t')}`)
    assert.equal(count.json.results[0].values[0][0], rowsWhileFull + 1, 'the failed write left nothing behind')
    await waitFor(async () => {
      const [a, b] = await Promise.all([call('GET', `${master.url}/db/checksum`), call('GET', `${replica.url}/db/checksum`)])
      return a.json.lsn === after.json.lsn && a.json.checksum === b.json.checksum && b.json.lsn === a.json.lsn ? true : undefined
    }, 30_000, () => 'the replica at the master\'s checksum')
  } finally {
    for (const node of nodes) await node.kill('SIGKILL')
    unmount(disk)
    rmSync(dir, { recursive: true, force: true })
  }
})
