/**
 * rqlite-js, unchanged, against a Tandem cluster with --auth: it sends the credentials of its
 * `authentication` option as HTTP Basic, as it does to rqlite; a replica forwards its writes with
 * them and the master checks them again.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DataApiClient, type DataResults } from 'rqlite-js'
import { Cluster } from '../harness/cluster.ts'

const dir = mkdtempSync(join(tmpdir(), 'tandem-rqlite-auth-'))
const usersFile = join(dir, 'users.json')
const secretFile = join(dir, 'cluster-secret')
writeFileSync(usersFile, JSON.stringify([
  { username: 'writer', password: 'writer password', perms: ['query', 'execute'] },
  { username: 'reader', password: 'reader password', perms: ['query'] },
]))
writeFileSync(secretFile, 'an rqlite-js test secret, long enough\n')
const security = ['--auth', usersFile, '--cluster-secret-file', secretFile]

let cluster: Cluster

before(async () => {
  cluster = await Cluster.start({ replicas: 1, masterArgs: security, replicaArgs: security })
})

after(async () => {
  await cluster?.stop()
  rmSync(dir, { recursive: true, force: true })
})

function client(url: string, username: string, password: string): DataApiClient {
  // No retries: a refusal must surface at once.
  return new DataApiClient(url, { authentication: { username, password }, retryableStatusCodes: new Set(), retryableErrorCodes: new Set() })
}

async function status(promise: Promise<DataResults>): Promise<number> {
  try {
    await promise
  } catch (error) {
    const response = (error as { response?: { status: number } }).response
    assert.ok(response !== undefined, `expected an HTTP error, got ${String(error)}`)
    return response.status
  }
  return 200
}

test('rqlite-js with a user of the auth file writes through a replica and reads it back', async () => {
  const onReplica = client(cluster.replicas[0]!.url, 'writer', 'writer password')
  const written = await onReplica.execute(['CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)', ['INSERT INTO notes(text) VALUES(?)', 'from rqlite-js']])
  assert.equal(written.hasError(), false, written.getFirstError()?.message)
  const read = await onReplica.query('SELECT text FROM notes')
  assert.deepEqual(read.toArray(), [{ text: 'from rqlite-js' }])
})

test('rqlite-js with a wrong password gets 401, and a read-only user 403 on a write, on the master and through the replica', async () => {
  for (const node of [cluster.master, cluster.replicas[0]!]) {
    assert.equal(await status(client(node.url, 'writer', 'wrong').execute([['INSERT INTO notes(text) VALUES(?)', 'nope']])), 401)
    assert.equal(await status(client(node.url, 'reader', 'reader password').execute([['INSERT INTO notes(text) VALUES(?)', 'nope']])), 403)
    assert.equal(await status(client(node.url, 'reader', 'reader password').query('SELECT count(*) FROM notes', { level: 'weak' })), 200)
  }
  const count = await client(cluster.master.url, 'reader', 'reader password').query('SELECT count(*) AS n FROM notes')
  assert.deepEqual(count.toArray(), [{ n: 1 }])
})
