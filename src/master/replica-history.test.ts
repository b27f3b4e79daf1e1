import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LogStore } from '../replication-log/log-store.ts'
import { createEntry, hashHex, type LogEntry } from '../replication-log/log-entry.ts'
import { openConnection } from '../storage/index.ts'
import { isHistory, marksMax, whySnapshot } from './replica-history.ts'

const hash = 'ab'.repeat(16)

test("a hello's history hash and marks are checked before anything reads them", () => {
  assert.ok(isHistory(undefined, []))
  assert.ok(isHistory(hash, [{ lsn: 3, hash }]))
  for (const bad of ['AB'.repeat(16), 'ab'.repeat(15), 'zz'.repeat(16), 42, null, { length: 32 }]) assert.equal(isHistory(bad, []), false, JSON.stringify(bad))
  for (const marks of [
    'not a list',
    [null],
    [{ lsn: 0, hash }],
    [{ lsn: -1, hash }],
    [{ lsn: 1.5, hash }],
    [{ lsn: '3', hash }],
    [{ lsn: 2 ** 60, hash }],
    [{ lsn: 3, hash: 'ab' }],
    Array.from({ length: marksMax + 1 }, (_, i) => ({ lsn: i + 1, hash })),
  ]) {
    assert.equal(isHistory(hash, marks), false, JSON.stringify(marks).slice(0, 80))
  }
})

/** A log of `count` entries whose ops are `content(lsn)`. */
function logOf(dir: string, name: string, count: number, content: (lsn: number) => number): LogStore {
  const connection = openConnection(join(dir, `${name}.db`))
  LogStore.ensureSchema(connection)
  const log = new LogStore(connection)
  let previous: LogEntry | undefined
  for (let lsn = 1; lsn <= count; lsn++) {
    previous = createEntry(lsn, 1, 1000 + lsn, new Uint8Array([content(lsn)]), previous?.hash ?? null)
    log.append(previous)
  }
  return log
}

test('a replica whose history left the master\'s at the same LSN is sent to a snapshot from where they part, exactly within 16 entries, within 2x further back', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-history-'))
  try {
    const master = logOf(dir, 'master', 200, (lsn) => (lsn <= 190 ? 1 : 2))
    const near = logOf(dir, 'near', 200, () => 1)
    const far = logOf(dir, 'far', 200, (lsn) => (lsn <= 100 ? 1 : 3))
    const same = logOf(dir, 'same', 150, (lsn) => (lsn <= 190 ? 1 : 2))
    assert.equal(whySnapshot(master, 200, same.position(), same.marks()), undefined, 'a prefix of the master\'s history streams')
    assert.equal(hashHex(master.get(150)!.hash), same.position().hash)
    const nearFork = whySnapshot(master, 200, near.position(), near.marks())
    assert.equal(nearFork?.forkLsn, 190)
    const farFork = whySnapshot(master, 200, far.position(), far.marks())
    assert.ok(farFork?.forkLsn !== undefined && farFork.forkLsn <= 100 && farFork.forkLsn >= 50, `fork point ${farFork?.forkLsn} is at or before 100, within a factor of two`)
    assert.ok(far.marks().length <= marksMax)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
