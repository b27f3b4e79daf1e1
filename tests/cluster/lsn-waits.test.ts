/** A min_lsn wait whose client went away is dropped at once, not held until its deadline. */
import { after, before, describe, test } from 'node:test'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { get } from '../harness/http.ts'

describe('min_lsn waits', () => {
  let cluster: Cluster
  before(async () => {
    cluster = await Cluster.start({ replicas: 0 })
  })
  after(async () => {
    await cluster.stop()
  })

  const waiting = async () => (await get<{ reads: { min_lsn_waits?: number } }>(`${cluster.master.url}/status`)).body.reads.min_lsn_waits

  test('200 abandoned waits for an LSN far ahead are all dropped', async () => {
    const clients = Array.from({ length: 200 }, () => new AbortController())
    const url = `${cluster.master.url}/db/query?q=${encodeURIComponent('SELECT 1')}&min_lsn=1000000000&min_lsn_timeout=10m`
    const calls = clients.map((client) => fetch(url, { signal: client.signal }).catch(() => undefined))
    await waitFor(async () => ((await waiting()) === 200 ? true : undefined), 30_000, () => 'the waits did not all start')
    for (const client of clients) client.abort()
    await Promise.all(calls)
    let last: number | undefined
    await waitFor(async () => ((last = await waiting()) === 0 ? true : undefined), 30_000, () => `${last} waits still held after their clients went away`)
  })
})
