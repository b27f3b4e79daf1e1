import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClusterId } from './cluster-id.ts'

test('a node adopts the first cluster id it meets, keeps it across restarts, and refuses another or a malformed one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-cluster-id-'))
  try {
    const ours = new ClusterId(mkdtempSync(join(dir, 'master-'))).ensure()
    const replicaDir = mkdtempSync(join(dir, 'replica-'))
    const replica = new ClusterId(replicaDir)
    for (const hostile of ['', 'x'.repeat(10_000), '../../etc/passwd', 42, null, { id: ours }]) {
      assert.throws(() => replica.adopt(hostile, 'the master'), /PROTOCOL_ERROR|not one/, JSON.stringify(hostile))
    }
    assert.equal(replica.value, undefined, 'nothing malformed was kept')
    replica.adopt(ours, 'the master')
    assert.equal(new ClusterId(replicaDir).value, ours)
    assert.equal(readFileSync(join(replicaDir, 'cluster-id'), 'utf8').trim(), ours)
    const theirs = new ClusterId(mkdtempSync(join(dir, 'other-'))).ensure()
    assert.throws(() => replica.adopt(theirs, 'the master'), (e: Error & { code?: string }) => e.code === 'CLUSTER_MISMATCH')
    assert.throws(() => replica.check(theirs, 'a replica'), (e: Error & { code?: string }) => e.code === 'CLUSTER_MISMATCH')
    replica.check(undefined, 'an old node')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
