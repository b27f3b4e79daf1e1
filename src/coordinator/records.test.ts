import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseEpoch, parseMaster, parseNode } from './records.ts'

test('records Tandem writes in etcd parse back', () => {
  assert.deepEqual(parseMaster('{"id":"a1b2c3d4","url":"http://127.0.0.1:4001","epoch":3}'), { id: 'a1b2c3d4', url: 'http://127.0.0.1:4001', epoch: 3 })
  assert.deepEqual(parseEpoch('{"epoch":7,"id":"a1b2c3d4"}'), { epoch: 7, id: 'a1b2c3d4' })
  assert.deepEqual(parseNode('{"id":"n1","url":"https://db1.example:4001","role":"replica","epoch":2,"lsn":10,"eligible":true}'), { id: 'n1', url: 'https://db1.example:4001', role: 'replica', epoch: 2, lsn: 10, eligible: true })
})

test('a value Tandem did not write parses to nothing, whatever it holds', () => {
  const hostile = [
    '', 'null', '[]', '"x"', '{', 'not json', '{"id":"a","url":"http://127.0.0.1:1"}',
    '{"id":"a","url":"javascript:alert(1)","epoch":1}', '{"id":"a","url":"http://u:p@127.0.0.1:1","epoch":1}',
    '{"id":"a","url":"http://127.0.0.1:1/path","epoch":1}', '{"id":"a","url":"http://127.0.0.1:1","epoch":0}',
    '{"id":"a","url":"http://127.0.0.1:1","epoch":1.5}', '{"id":"a","url":"http://127.0.0.1:1","epoch":"1"}',
    '{"id":"../../x","url":"http://127.0.0.1:1","epoch":1}', `{"id":"${'a'.repeat(65)}","url":"http://127.0.0.1:1","epoch":1}`,
    `{"id":"a","url":"http://127.0.0.1:1","epoch":1,"pad":"${'x'.repeat(5000)}"}`, '{"id":"a","url":"http://127.0.0.1:1","epoch":1e400}',
  ]
  for (const text of hostile) assert.equal(parseMaster(text), undefined, text)
  for (const text of ['{"epoch":0,"id":"a"}', '{"epoch":2}', '{"epoch":2,"id":5}']) assert.equal(parseEpoch(text), undefined, text)
  for (const text of [
    '{"id":"n1","url":"http://127.0.0.1:1","role":"king","epoch":2,"lsn":10,"eligible":true}',
    '{"id":"n1","url":"http://127.0.0.1:1","role":"replica","epoch":2,"lsn":-1,"eligible":true}',
    '{"id":"n1","url":"http://127.0.0.1:1","role":"replica","epoch":2,"lsn":10,"eligible":"yes"}',
  ]) assert.equal(parseNode(text), undefined, text)
})
