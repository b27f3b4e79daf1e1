import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DurableAcks } from './durable-acks.ts'

/** A replica's side of it: an applied position, syncs resolved by hand, acks recorded. */
function harness(options: { withFlush: boolean; flushDelayMs: number }) {
  const state = { applied: 0, connection: 'c1' as string | undefined, syncs: [] as (() => void)[], failures: [] as (() => void)[] }
  const sent: [string, number][] = []
  const failed: (string | undefined)[] = []
  const acks = new DurableAcks<string>({
    appliedLsn: () => state.applied,
    flush: options.withFlush
      ? () =>
          new Promise<void>((resolve, reject) => {
            state.syncs.push(resolve)
            state.failures.push(() => reject(new Error('EIO')))
          })
      : undefined,
    flushDelayMs: options.flushDelayMs,
    connection: () => state.connection,
    send: (connection, lsn) => sent.push([connection, lsn]),
    failed: (connection) => failed.push(connection),
  })
  const settle = () => new Promise((resolve) => setImmediate(resolve))
  return { acks, state, sent, failed, settle }
}

test('without a flush, what is applied is acknowledged at once', () => {
  const { acks, state, sent } = harness({ withFlush: false, flushDelayMs: 0 })
  state.applied = 3
  acks.applied()
  assert.deepEqual(sent, [['c1', 3]])
  assert.equal(acks.durableLsn, 3)
})

test('with a flush, an ack waits for the sync and names what was applied when it started', async () => {
  const { acks, state, sent, settle } = harness({ withFlush: true, flushDelayMs: 0 })
  state.applied = 5
  acks.applied()
  assert.equal(state.syncs.length, 1)
  assert.deepEqual(sent, [])
  state.applied = 7
  acks.applied()
  assert.equal(state.syncs.length, 1, 'one sync at a time')
  state.syncs[0]!()
  await settle()
  assert.deepEqual(sent, [['c1', 5]])
  assert.equal(state.syncs.length, 2, 'the batch applied during the sync gets a sync of its own')
  state.syncs[1]!()
  await settle()
  assert.deepEqual(sent, [['c1', 5], ['c1', 7]])
})

test('a delayed sync runs at once when the master asks, and not before', async () => {
  const { acks, state, sent, settle } = harness({ withFlush: true, flushDelayMs: 600_000 })
  state.applied = 4
  acks.applied()
  await settle()
  assert.equal(state.syncs.length, 0, 'held')
  acks.ask(6)
  assert.equal(state.syncs.length, 1, 'asked: synced now, what is applied so far')
  state.syncs[0]!()
  await settle()
  assert.deepEqual(sent, [['c1', 4]])
  state.applied = 6
  acks.applied()
  assert.equal(state.syncs.length, 2, 'the asked LSN is applied: no waiting')
  state.syncs[1]!()
  await settle()
  assert.deepEqual(sent, [['c1', 4], ['c1', 6]])
  state.applied = 8
  acks.applied()
  assert.equal(state.syncs.length, 2, 'nothing asked beyond 6: held again')
  acks.stop()
})

test('a failed sync acknowledges nothing and names its connection; a sync that ends on another connection sends nothing', async () => {
  const { acks, state, sent, failed, settle } = harness({ withFlush: true, flushDelayMs: 0 })
  state.applied = 2
  acks.applied()
  state.failures[0]!()
  await settle()
  assert.deepEqual(sent, [])
  assert.deepEqual(failed, ['c1'])
  assert.equal(acks.durableLsn, 0)
  state.applied = 3
  acks.applied()
  state.connection = 'c2'
  state.syncs[1]!()
  await settle()
  assert.deepEqual(sent, [])
  assert.equal(acks.durableLsn, 3, 'durable all the same')
})
