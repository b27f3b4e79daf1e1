/**
 * Connections that cost a node without asking anything of it are bounded: a request that never
 * finishes its headers, a replication WebSocket that never says hello, more connections than
 * --max-connections. Long waits after a request was received are not.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { WebSocket } from 'ws'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { NodeProcess } from '../harness/node-process.ts'
import { get } from '../harness/http.ts'

/** Resolves when the socket is closed by the other side; fails after `timeoutMs`. */
function closedWithin(socket: Socket | WebSocket, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still open after ${timeoutMs} ms`)), timeoutMs)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

function openSocket(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => resolve(socket))
    socket.on('error', reject)
    // Read whatever the node answers (a 408): a paused socket never sees the end of the stream.
    socket.resume()
  })
}

describe('connection limits', () => {
  let cluster: Cluster
  before(async () => {
    const timeouts = ['--headers-timeout-ms', '1000', '--request-timeout-ms', '2000']
    cluster = await Cluster.start({ replicas: 1, masterArgs: timeouts, replicaArgs: timeouts })
  })
  after(async () => {
    await cluster.stop()
  })

  test('a connection that sends half a request line is closed', async () => {
    const socket = await openSocket(cluster.master.url)
    socket.on('error', () => undefined)
    socket.write('GET /sta')
    await closedWithin(socket, 30_000)
  })

  test('a connection that sends nothing is closed', async () => {
    const socket = await openSocket(cluster.master.url)
    socket.on('error', () => undefined)
    await closedWithin(socket, 30_000)
  })

  test('a replication WebSocket that never says hello is closed', async () => {
    const ws = new WebSocket(`${cluster.master.url.replace(/^http/, 'ws')}/replication`)
    ws.on('error', () => undefined)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    await closedWithin(ws, 30_000)
  })

  test('a wait longer than the request timeout still gets its answer', async () => {
    const replica = cluster.replicas[0]!
    const answer = await get<{ code?: string }>(`${replica.url}/db/query?q=${encodeURIComponent('SELECT 1')}&level=none&min_lsn=1000000&min_lsn_timeout=4s`)
    assert.equal(answer.status, 503, JSON.stringify(answer.body))
    assert.equal(answer.body.code, 'MIN_LSN_TIMEOUT')
    // The replica still follows its master: the timeouts do not cut the replication stream.
    await cluster.converged()
  })

  test('connections past --max-connections are closed and the node still answers', async () => {
    const node = await NodeProcess.start({ role: 'master', dataDir: `${cluster.dir}/capped`, args: ['--max-connections', '10', '--headers-timeout-ms', '60000', '--request-timeout-ms', '60000'] })
    const sockets: Socket[] = []
    try {
      let closed = 0
      for (let i = 0; i < 20; i++) {
        const socket = await openSocket(node.url)
        socket.on('error', () => undefined)
        socket.once('close', () => closed++)
        sockets.push(socket)
      }
      await waitFor(() => (closed >= 10 ? true : undefined), 30_000, () => `${closed} of 20 connections closed; expected at least 10`)
      for (const socket of sockets) socket.destroy()
      await waitFor(async () => ((await get(`${node.url}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined), 30_000, () => 'the node did not answer after the sockets closed')
    } finally {
      for (const socket of sockets) socket.destroy()
      await node.kill('SIGKILL')
    }
  })
})
