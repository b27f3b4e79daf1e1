/**
 * rqlite's queued writes (issue 18, part 4), against real processes: `?queue` answers at once with
 * an increasing sequence number and the write applies after, in order; `&wait` answers once it
 * applied, or QUEUE_TIMEOUT (408) past `timeout`, the write still queued.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { isLosslessNumber, parse } from 'lossless-json'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { call, rows } from '../harness/http.ts'

/** A sequence number, exactly: rqlite's are nanoseconds, past 2^53. */
function sequenceOf(text: string): bigint {
  const body = parse(text) as { sequence_number?: unknown; results?: unknown }
  assert.ok(isLosslessNumber(body.sequence_number), text)
  assert.deepEqual(body.results, [], text)
  return BigInt(body.sequence_number.value)
}

describe('queued writes', () => {
  let cluster: Cluster
  before(async () => {
    cluster = await Cluster.start({ replicas: 1 })
    const created = await call('POST', `${cluster.master.url}/db/execute`, ['CREATE TABLE q (id INTEGER PRIMARY KEY, n INTEGER NOT NULL UNIQUE)'])
    assert.equal(created.status, 200, created.text)
  })
  after(async () => {
    await cluster.stop()
  })

  test('200 queued writes are answered with increasing sequence numbers and applied in the order queued; a failing one does not stop the rest', async () => {
    // One after another: each answer comes before its write is applied, so the order sent is the order queued.
    const sequences: bigint[] = []
    for (let n = 1; n <= 200; n++) {
      // n = 100 twice: the second breaks UNIQUE and fails alone, as a statement of its own would.
      const body = n === 101 ? [['INSERT INTO q(n) VALUES (?)', 100]] : [['INSERT INTO q(n) VALUES (?)', n]]
      const answer = await call('POST', `${cluster.master.url}/db/execute?queue`, body)
      assert.equal(answer.status, 200, answer.text)
      sequences.push(sequenceOf(answer.text))
    }
    for (let i = 1; i < sequences.length; i++) assert.ok(sequences[i]! > sequences[i - 1]!, `sequence ${i} increases`)
    const waited = await call('POST', `${cluster.master.url}/db/execute?queue&wait`, [['INSERT INTO q(n) VALUES (?)', 201]])
    assert.equal(waited.status, 200, waited.text)
    assert.ok(sequenceOf(waited.text) > sequences.at(-1)!)
    assert.equal(typeof waited.json.lsn, 'number', 'a waited write says where it committed')
    const stored = (await rows(cluster.master.url, 'SELECT n FROM q ORDER BY id')).map((r) => r[0])
    const expected = Array.from({ length: 201 }, (_, i) => i + 1).filter((n) => n !== 101)
    assert.deepEqual(stored, expected, 'every write applied once, in the order queued, the failing one left out')
  })

  test('through a replica: forwarded to the master, and applied', async () => {
    const answer = await call('POST', `${cluster.replicas[0]!.url}/db/execute?queue&wait`, [['INSERT INTO q(n) VALUES (?)', 1000]])
    assert.equal(answer.status, 200, answer.text)
    sequenceOf(answer.text)
    await waitFor(async () => ((await rows(cluster.replicas[0]!.url, 'SELECT count(*) FROM q WHERE n = 1000'))[0]![0] === 1 ? true : undefined), 10_000, () => 'the queued write on the replica')
  })

  test('wait past its timeout is QUEUE_TIMEOUT (408), and the write still applies after', async () => {
    // A write of ~1 s holds the pipeline; the queued write waits behind it.
    const long = call('POST', `${cluster.master.url}/db/execute`, ['WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1500000) INSERT INTO q(n) SELECT 10000 + i FROM c'])
    await new Promise((resolve) => setTimeout(resolve, 50))
    const late = await call('POST', `${cluster.master.url}/db/execute?queue&wait&timeout=1ms`, [['INSERT INTO q(n) VALUES (?)', 2000]])
    assert.equal(late.status, 408, late.text)
    assert.equal(late.json.code, 'QUEUE_TIMEOUT')
    assert.match(late.json.error, /not applied within 1 ms; it stays queued/)
    assert.equal((await long).status, 200)
    await waitFor(async () => ((await rows(cluster.master.url, 'SELECT count(*) FROM q WHERE n = 2000'))[0]![0] === 1 ? true : undefined), 10_000, () => 'the late write to apply')
  })

  test('a timeout that is not a duration, or longer than an hour, is refused and nothing is queued', async () => {
    for (const timeout of ['abc', '2h', '-1s']) {
      const answer = await call('POST', `${cluster.master.url}/db/execute?queue&wait&timeout=${timeout}`, [['INSERT INTO q(n) VALUES (?)', 3000]])
      assert.equal(answer.status, 400, `${timeout}: ${answer.text}`)
      assert.equal(answer.json.code, 'BAD_REQUEST')
    }
    assert.deepEqual(await rows(cluster.master.url, 'SELECT count(*) FROM q WHERE n = 3000'), [[0]])
  })
})
