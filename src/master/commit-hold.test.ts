import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createEntry, type LogEntry } from '../replication-log/log-entry.ts'
import { CommitHold } from './commit-hold.ts'

/** A hold on a clock moved by hand; `sent` lists the LSNs of each send. */
function harness(lingerMs: number) {
  const clock = { now: 0 }
  const sent: number[][] = []
  const hold = new CommitHold(lingerMs, (entries: LogEntry[]) => sent.push(entries.map((e) => e.lsn)), () => clock.now)
  const entry = (lsn: number) => createEntry(lsn, 1, clock.now, new Uint8Array([lsn]), null)
  /** Lets the event loop finish its turn: immediates queued before this one have run. */
  const endOfTurn = () => new Promise((resolve) => setImmediate(resolve))
  /** Entry 1 sent after a quiet spell, then entries 2 and 3 committed 0.3 ms apart. */
  const steadyStream = async () => {
    hold.add(entry(1))
    await endOfTurn()
    clock.now = 0.3
    hold.add(entry(2))
    clock.now = 0.6
    hold.add(entry(3))
  }
  return { hold, clock, sent, entry, endOfTurn, steadyStream }
}

async function until(probe: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

test('a commit after a quiet spell leaves at the end of the turn, after what the turn still has to do', async () => {
  const { hold, sent, entry, endOfTurn } = harness(1)
  hold.add(entry(1))
  assert.deepEqual(sent, [], 'not while the pipeline has answers to write')
  await endOfTurn()
  assert.deepEqual(sent, [[1]])
})

test('a steady stream is held past the end of the turn, and leaves as one', async () => {
  // A linger of a minute: nothing but flush() can send what is held while the test looks.
  const { hold, sent, endOfTurn, steadyStream } = harness(60_000)
  await steadyStream()
  await endOfTurn()
  assert.deepEqual(sent, [[1]], 'less than the linger after the one before: held')
  hold.flush()
  assert.deepEqual(sent, [[1], [2, 3]])
})

test('the linger timer sends a held stream by itself', async () => {
  const { sent, steadyStream } = harness(1)
  await steadyStream()
  await until(() => sent.length === 2, 'the linger timer')
  assert.deepEqual(sent, [[1], [2, 3]])
})

test('flush sends what is held at once, and nothing goes twice', async () => {
  const { hold, clock, sent, entry, endOfTurn } = harness(60_000)
  hold.add(entry(1))
  hold.flush()
  assert.deepEqual(sent, [[1]], 'a synchronous write does not wait for the end of the turn')
  clock.now = 1
  hold.add(entry(2))
  hold.add(entry(3))
  await endOfTurn()
  assert.deepEqual(sent, [[1]], 'held for the linger of a minute')
  hold.flush()
  hold.flush()
  await endOfTurn()
  assert.deepEqual(sent, [[1], [2, 3]])
})

test('with no linger every commit leaves alone, each at the end of its turn', async () => {
  const { hold, clock, sent, entry, endOfTurn } = harness(0)
  for (let lsn = 1; lsn <= 3; lsn++) {
    clock.now += 0.001
    hold.add(entry(lsn))
    await endOfTurn()
  }
  assert.deepEqual(sent, [[1], [2], [3]])
})
