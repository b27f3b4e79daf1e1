import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decide, rankOf, type CoordinatorView, type SelfState } from './decide.ts'
import type { NodeRecord } from './records.ts'

const replica: SelfState = { id: 'b', url: 'http://127.0.0.1:2', role: 'replica', epoch: 3, lsn: 100, deposed: false, damaged: false, eligible: true, followedUrl: 'http://127.0.0.1:1' }
const master: SelfState = { id: 'a', url: 'http://127.0.0.1:1', role: 'master', epoch: 3, lsn: 100, deposed: false, damaged: false, eligible: true, followedUrl: undefined }

function view(self: SelfState, changes: Partial<CoordinatorView> = {}): CoordinatorView {
  return { self, master: undefined, ownLease: 'L-self', others: [], absentForMs: 0, syncLsn: 0, rankStepMs: 1000, ...changes }
}

function node(id: string, changes: Partial<NodeRecord> = {}): NodeRecord {
  return { id, url: `http://127.0.0.1:${id.charCodeAt(0)}`, role: 'replica', epoch: 3, lsn: 100, eligible: true, ...changes }
}

test('the master key naming this master on its own lease is held; on an older lease of its own, taken back; naming it as a replica, released', () => {
  const mine = { record: { id: 'a', url: master.url, epoch: 3 }, lease: 'L-self' }
  assert.deepEqual(decide(view(master, { master: mine })), { kind: 'hold' })
  assert.deepEqual(decide(view(master, { master: { ...mine, lease: 'L-before-restart' } })), { kind: 'take', reclaim: true })
  assert.deepEqual(decide(view({ ...master, role: 'replica' }, { master: mine })), { kind: 'release' })
})

test('a master whose database file is damaged releases the key, and does not take it back', () => {
  const mine = { record: { id: 'a', url: master.url, epoch: 3 }, lease: 'L-self' }
  const damaged = { ...master, damaged: true, eligible: false }
  assert.deepEqual(decide(view(damaged, { master: mine })), { kind: 'release' })
  assert.equal(decide(view(damaged, { absentForMs: 60_000 })).kind, 'wait')
})

test('the master key naming another node: a master steps down and follows it, a replica follows it unless it already does', () => {
  const other = { record: { id: 'z', url: 'http://127.0.0.1:9', epoch: 4 }, lease: 'L-z' }
  assert.deepEqual(decide(view(master, { master: other })), { kind: 'follow', url: 'http://127.0.0.1:9', epoch: 4 })
  assert.deepEqual(decide(view(replica, { master: other })), { kind: 'follow', url: 'http://127.0.0.1:9', epoch: 4 })
  assert.equal(decide(view({ ...replica, followedUrl: 'http://127.0.0.1:9' }, { master: other })).kind, 'wait')
})

test('a master key Tandem did not write is never acted on', () => {
  assert.equal(decide(view(replica, { master: 'invalid', absentForMs: 60_000 })).kind, 'wait')
  assert.equal(decide(view(master, { master: 'invalid' })).kind, 'wait')
})

test('with the key absent, the most advanced eligible node takes it first; each node before another delays it one rank step', () => {
  const behind = node('c', { lsn: 90 })
  const ahead = node('d', { lsn: 110 })
  assert.deepEqual(decide(view(replica, { others: [behind] })), { kind: 'take', reclaim: false })
  assert.equal(decide(view(replica, { others: [behind, ahead], absentForMs: 999 })).kind, 'wait')
  assert.deepEqual(decide(view(replica, { others: [behind, ahead], absentForMs: 1000 })), { kind: 'take', reclaim: false })
  // Before in rank: a node that says it is master, then a later epoch, then more of the log, then the smaller id.
  assert.equal(rankOf(replica, [node('z', { role: 'master', epoch: 1, lsn: 0 })]), 1)
  assert.equal(rankOf(replica, [node('z', { epoch: 4, lsn: 0 })]), 1)
  assert.equal(rankOf(replica, [node('a')]), 1, 'equal positions: the smaller id first')
  assert.equal(rankOf(replica, [node('c')]), 0)
  assert.equal(rankOf(replica, [node('z', { lsn: 500, eligible: false })]), 0, 'a node that may not become master delays nobody')
  assert.equal(rankOf(replica, [node('b', { lsn: 500 })]), 0, 'its own record does not count')
})

test('a node that is not eligible (a delayed replica) or has no lease yet never takes the key', () => {
  assert.equal(decide(view({ ...replica, eligible: false }, { absentForMs: 60_000 })).kind, 'wait')
  assert.equal(decide(view(replica, { ownLease: undefined, absentForMs: 60_000 })).kind, 'wait')
})

test('a replica behind the LSN a master acknowledged as replicated never takes the key; one holding it does', () => {
  assert.equal(decide(view(replica, { syncLsn: 101, absentForMs: 60_000 })).kind, 'wait')
  assert.deepEqual(decide(view(replica, { syncLsn: 100 })), { kind: 'take', reclaim: false })
  assert.deepEqual(decide(view(master, { syncLsn: 1000 })), { kind: 'take', reclaim: false }, 'a master is the source of that LSN')
})
