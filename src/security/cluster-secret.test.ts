import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ClusterSecret } from './cluster-secret.ts'

test("a node's token proves the secret it was made from, and no other", () => {
  const secret = new ClusterSecret('the cluster secret, long enough')
  const same = new ClusterSecret('the cluster secret, long enough')
  const other = new ClusterSecret('another cluster secret, long enough')
  assert.ok(secret.accepts(same.token))
  assert.ok(!secret.accepts(other.token))
  assert.ok(!secret.accepts(undefined))
  assert.ok(!secret.accepts(''))
  assert.ok(!secret.token.includes('secret'), 'the token does not carry the secret')
})

test('a short secret is refused with how to make a good one', () => {
  assert.throws(() => new ClusterSecret('short'), /at least 16 bytes.*openssl rand/)
})
