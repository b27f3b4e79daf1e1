/**
 * Promotions that race (issue 17, part 2), against real processes: the master is killed and both
 * replicas are told to promote themselves at once. A promotion needs a majority of the nodes to
 * accept its epoch, each node accepting one candidate per epoch, so exactly one wins; the other
 * answers PROMOTION_REFUSED naming the winner, acknowledges nothing, and follows it. Before, both
 * answered epoch 2 and acknowledged writes at the same LSN, and one then followed the other with
 * different rows.
 */
import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { call } from '../harness/http.ts'

const clusters: Cluster[] = []
afterEach(async () => {
  for (const cluster of clusters.splice(0)) await cluster.stop()
})

const trials = 3

test(`${trials} races of two promotions after the master is killed: one winner each time, the loser names it, acknowledges nothing and follows it`, async () => {
  for (let trial = 1; trial <= trials; trial++) {
    const cluster = await Cluster.start({ replicas: 2 })
    clusters.push(cluster)
    await call('POST', `${cluster.master.url}/db/execute`, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)', "INSERT INTO t(v) VALUES ('before')"])
    await cluster.converged()
    await cluster.master.kill('SIGKILL')
    const [r1, r2] = cluster.replicas as [(typeof cluster.replicas)[0], (typeof cluster.replicas)[0]]
    const answers = await Promise.all([r1, r2].map((r) => call('POST', `${r.url}/cluster/promote`)))
    const won = answers.filter((a) => a.status === 200)
    assert.equal(won.length, 1, `trial ${trial}: exactly one promotion wins: ${answers.map((a) => `${a.status} ${a.text}`).join(' | ')}`)
    const winner = answers[0]!.status === 200 ? r1 : r2
    const loser = winner === r1 ? r2 : r1
    const refusal = answers[winner === r1 ? 1 : 0]!
    assert.equal(refusal.status, 409, refusal.text)
    assert.equal(refusal.json.code, 'PROMOTION_REFUSED')
    assert.ok(refusal.text.includes(winner.id) || refusal.text.includes(winner.url), `trial ${trial}: the refusal names the winner (${winner.id} at ${winner.url}): ${refusal.text}`)
    // A write through each: the loser is no master; what it takes goes to the winner.
    const direct = await call('POST', `${winner.url}/db/execute?sync=1`, [["INSERT INTO t(v) VALUES (?)", `winner ${trial}`]])
    assert.equal(direct.status, 200, direct.text)
    await waitFor(async () => ((await call('GET', `${loser.url}/status`)).json.replication?.master_url === winner.url ? true : undefined), 20_000, () => `trial ${trial}: the loser following the winner`)
    const viaLoser = await call('POST', `${loser.url}/db/execute?redirect`, [["INSERT INTO t(v) VALUES (?)", `via loser ${trial}`]])
    assert.notEqual(viaLoser.status, 200, 'a replica never acknowledges a write itself')
    const sums = await waitFor(async () => {
      const [a, b] = await Promise.all([winner, loser].map(async (n) => (await call('GET', `${n.url}/db/checksum`)).json))
      return a.lsn === b.lsn && a.lsn >= direct.json.lsn ? [a, b] : undefined
    }, 20_000, () => `trial ${trial}: both at the same LSN`)
    assert.equal(sums[0].checksum, sums[1].checksum, `trial ${trial}: one history`)
    await cluster.stop()
    clusters.splice(0)
  }
})

test('a node accepts one candidate per epoch, durably; fence requests that are not well formed are refused and move nothing', async () => {
  const cluster = await Cluster.start({ replicas: 1 })
  clusters.push(cluster)
  const replica = cluster.replicas[0]!
  const fence = (body: unknown) => call('POST', `${replica.url}/cluster/fence`, body)
  const candidate = { id: 'node-x', url: 'http://127.0.0.1:1' }
  // Where the candidate's log ends: far ahead of the replica's, so that its position grants.
  const position = { epoch: 1, lsn: 1_000_000 }
  for (const body of [
    {},
    { epoch: 5, position },
    { epoch: 5, candidate: 'node-x', position },
    { epoch: 5, candidate: { id: '', url: candidate.url }, position },
    { epoch: 5, candidate: { id: 'x'.repeat(129), url: candidate.url }, position },
    { epoch: 5, candidate: { id: 'node-x', url: 'ftp://127.0.0.1:1' }, position },
    { epoch: 5, candidate: { id: 'node-x', url: `http://${'a'.repeat(3000)}` }, position },
    { epoch: 2 ** 40, candidate, position },
    { epoch: -1, candidate, position },
    { epoch: 1.5, candidate, position },
    { epoch: 5, candidate },
    { epoch: 5, candidate, position: 7 },
    { epoch: 5, candidate, position: { epoch: 1 } },
    { epoch: 5, candidate, position: { epoch: 1, lsn: -1 } },
    { epoch: 5, candidate, position: { epoch: 1, lsn: '9' } },
    { epoch: 5, candidate, position: { epoch: 1, lsn: 2 ** 60 } },
    '{"epoch": 5, "candidate": {',
  ]) {
    const answer = await fence(body)
    assert.equal(answer.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${answer.text}`)
    assert.equal(answer.json.code, 'BAD_REQUEST')
  }
  const status = async () => (await call('GET', `${replica.url}/status`)).json
  assert.equal((await status()).epoch, 1, 'no refused request moved the epoch')
  assert.equal((await status()).replication.state, 'streaming')

  const first = await fence({ epoch: 5, candidate, position })
  assert.equal(first.json.granted, true, first.text)
  const rival = await fence({ epoch: 5, candidate: { id: 'node-y', url: 'http://127.0.0.1:2' }, position })
  assert.equal(rival.json.granted, false, 'one candidate per epoch')
  assert.deepEqual(rival.json.vote, { epoch: 5, candidate })
  assert.equal((await fence({ epoch: 5, candidate, position })).json.granted, true, 'the same candidate asking again is granted again')
  assert.equal((await fence({ epoch: 4, candidate: { id: 'node-z', url: 'http://127.0.0.1:3' }, position })).json.granted, false, 'an older epoch is refused')
  // Durable: the vote outlives a crash.
  await replica.restart()
  const after = await fence({ epoch: 5, candidate: { id: 'node-y', url: 'http://127.0.0.1:2' }, position })
  assert.equal(after.json.granted, false, after.text)
  assert.equal((await status()).epoch, 5)
})

test('a replica never accepts a candidate with less of the log, at any epoch; it accepts one with as much, and the refusal records no vote', async () => {
  const cluster = await Cluster.start({ replicas: 1 })
  clusters.push(cluster)
  const replica = cluster.replicas[0]!
  // Three requests, three entries.
  for (const sql of ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)', "INSERT INTO t(v) VALUES ('a')", "INSERT INTO t(v) VALUES ('b')"]) await call('POST', `${cluster.master.url}/db/execute`, [sql])
  await cluster.converged()
  const status = async () => (await call('GET', `${replica.url}/status`)).json
  const mine = (await status()).position as { epoch: number; lsn: number }
  assert.ok(mine.lsn >= 3, JSON.stringify(mine))
  const behind = { id: 'node-behind', url: 'http://127.0.0.1:1' }
  for (const [epoch, position] of [[2, { epoch: mine.epoch, lsn: mine.lsn - 1 }], [50, { epoch: mine.epoch, lsn: 0 }], [51, { epoch: mine.epoch - 1, lsn: mine.lsn + 100 }]] as const) {
    const answer = await call('POST', `${replica.url}/cluster/fence`, { epoch, candidate: behind, position })
    assert.equal(answer.status, 200, answer.text)
    assert.equal(answer.json.granted, false, `epoch ${epoch}, candidate at ${JSON.stringify(position)}: ${answer.text}`)
    assert.deepEqual(answer.json.position.lsn, mine.lsn, 'the answer says where the replica stands')
  }
  const after = await status()
  assert.equal(after.epoch, 1, 'a refused candidate moves no epoch')
  assert.equal(after.replication.state, 'streaming', 'and the replica still follows its master')
  // As much of the log as the replica: granted, at the first epoch a behind candidate asked for.
  const level = { id: 'node-level', url: 'http://127.0.0.1:2' }
  const granted = await call('POST', `${replica.url}/cluster/fence`, { epoch: 2, candidate: level, position: { epoch: mine.epoch, lsn: mine.lsn } })
  assert.equal(granted.json.granted, true, granted.text)
  assert.deepEqual(granted.json.vote, { epoch: 2, candidate: level })
})
