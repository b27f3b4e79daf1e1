import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Retention } from './retention.ts'

function filled(entries: number, bytesEach: number): Retention {
  const retention = new Retention()
  for (let lsn = 1; lsn <= entries; lsn++) retention.add(lsn, bytesEach)
  return retention
}

test('keeps everything while the log fits the size to retain', () => {
  assert.equal(filled(1000, 10).truncationPoint({ retainBytes: 1_000_000, retainBytesMax: 10_000_000 }, undefined), undefined)
})

test('truncates beyond the size to retain, keeping at least the newest entries', () => {
  const point = filled(1000, 10).truncationPoint({ retainBytes: 1000, retainBytesMax: 10_000_000 }, undefined)
  assert.ok(point !== undefined && point > 1 && point <= 1000 - 100 + 1, `point ${point}`)
})

test('a connected replica that is behind holds the log', () => {
  const point = filled(1000, 10).truncationPoint({ retainBytes: 100, retainBytesMax: 1_000_000 }, 300)
  assert.equal(point, 300)
})

test('the hard cap wins over a replica that is too far behind', () => {
  const point = filled(1000, 1000).truncationPoint({ retainBytes: 1000, retainBytesMax: 100_000 }, 2)
  assert.ok(point !== undefined && point > 2, `the cap must truncate past the replica, got ${point}`)
  assert.ok(point >= 1000 - 100 - 64, 'and keep about the capped size')
})

test('dropBefore forgets whole chunks only', () => {
  const retention = filled(200, 10)
  retention.dropBefore(100)
  assert.ok(retention.bytes >= (200 - 100 + 1) * 10)
  assert.ok(retention.bytes < 2000)
})
