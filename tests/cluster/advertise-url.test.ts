/**
 * --advertise-url (issue 17, part 4): the URL a node gives others — its ready line, /nodes, the
 * URL a replica tells its master, redirects — is the one it is told to advertise, not the address
 * it listens on; a URL without a port takes the listening one. Malformed values are refused at start.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { waitFor } from '../harness/cluster.ts'
import { call } from '../harness/http.ts'
import { NodeProcess } from '../harness/node-process.ts'

const dir = mkdtempSync(join(tmpdir(), 'tandem-advertise-'))
const nodes: NodeProcess[] = []
after(async () => {
  for (const node of nodes) await node.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

test('nodes advertise the URL they are given, with their listening port when it names none', async () => {
  const master = await NodeProcess.start({ role: 'master', dataDir: join(dir, 'master'), args: ['--advertise-url', 'http://localhost'] })
  nodes.push(master)
  assert.match(master.url, /^http:\/\/localhost:\d+$/, 'the ready line gives the advertised host')
  const replica = await NodeProcess.start({ role: 'replica', dataDir: join(dir, 'replica'), masterUrl: master.url, args: ['--advertise-url', 'http://localhost'] })
  nodes.push(replica)
  assert.match(replica.url, /^http:\/\/localhost:\d+$/)
  await waitFor(async () => ((await call('GET', `${replica.url}/readyz`)).status === 200 ? true : undefined), 20_000, () => 'the replica streaming')
  const listed = (await call('GET', `${master.url}/nodes`)).json as Record<string, { api_addr: string; role: string }>
  assert.deepEqual(Object.values(listed).map((n) => [n.role, n.api_addr]).sort(), [['master', master.url], ['replica', replica.url]])
  const redirected = await call('POST', `${replica.url}/db/execute?redirect`, ['CREATE TABLE t (id INTEGER PRIMARY KEY)'])
  assert.equal(redirected.status, 301)
  assert.equal(redirected.headers.get('location'), `${master.url}/db/execute?redirect`)
})

test('a malformed --advertise-url, or one whose scheme the node does not serve, is refused at start', () => {
  const bin = fileURLToPath(new URL('../../bin/tandem.js', import.meta.url))
  for (const [value, message] of [
    ['ftp://localhost', /http:\/\/HOST\[:PORT\] or https:\/\/HOST\[:PORT\]/],
    ['http://user:secret@localhost', /must not carry credentials/],
    ['http://localhost/path', /no path, query or fragment/],
    ['localhost:4001', /http:\/\/HOST\[:PORT\] or https:\/\/HOST\[:PORT\]/],
    ['https://localhost', /must be http: this node serves plain HTTP/],
  ] as const) {
    const run = spawnSync(process.execPath, [bin, 'master', '--data', join(dir, 'refused'), '--port', '0', '--advertise-url', value], { encoding: 'utf8', timeout: 20_000 })
    assert.notEqual(run.status, 0, `${value} was accepted`)
    assert.match(run.stderr, message, value)
    assert.doesNotMatch(run.stderr, /user:secret@/, 'a password in the URL is never echoed')
  }
})
