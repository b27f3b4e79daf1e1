import { createWriteStream } from 'node:fs'
import { open, rm } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { request } from 'undici'
import { TandemError } from '../shared/errors.ts'
import type { ClusterId, PeerCredentials } from '../security/index.ts'

/**
 * Streams a snapshot of the master's database into `target` (never held whole in memory) and
 * fsyncs it. Returns the snapshot's position as the master announced it.
 */
export async function downloadSnapshot(masterUrl: string, target: string, peers?: PeerCredentials, cluster?: ClusterId): Promise<{ lsn: number; bytes: number }> {
  await rm(target, { force: true })
  const headers: Record<string, string> = { ...peers?.headers }
  if (cluster?.value !== undefined) headers['x-tandem-cluster'] = cluster.value
  const response = await request(`${masterUrl}/replication/snapshot`, {
    method: 'GET',
    headers,
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
    ...(peers === undefined ? {} : { dispatcher: peers.dispatcher }),
  })
  if (response.statusCode !== 200) {
    const text = await response.body.text()
    throw new TandemError('PROTOCOL_ERROR', `the master refused a snapshot: HTTP ${response.statusCode} ${text.slice(0, 200)}`)
  }
  // Never install another cluster's database over this one's (the master checks too).
  const theirs = response.headers['x-tandem-cluster']
  if (cluster !== undefined && typeof theirs === 'string' && theirs !== '') {
    try {
      cluster.adopt(theirs, `the master at ${masterUrl}`)
    } catch (error) {
      response.body.destroy()
      throw error
    }
  }
  const expected = Number(response.headers['content-length'])
  await pipeline(response.body, createWriteStream(target))
  const file = await open(target, 'r+')
  try {
    const { size } = await file.stat()
    if (Number.isFinite(expected) && size !== expected) {
      throw new TandemError('PROTOCOL_ERROR', `snapshot truncated: received ${size} of ${expected} bytes`)
    }
    await file.sync()
    return { lsn: Number(response.headers['x-tandem-lsn'] ?? 0), bytes: size }
  } finally {
    await file.close()
  }
}
