/**
 * The attacks of issue 15, each repeated against a cluster started with --auth and a cluster
 * secret: each is refused, and the master's data (its checksum) and epoch are what they were.
 * The attacker holds valid user credentials (even admin's) but not the cluster secret, so only
 * the node checks stand between it and the epoch, the replica list, sync counts and jobs.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { WebSocket } from 'ws'
import { decodeEntries, protocolVersion } from '../../src/protocol/messages.ts'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { NodeProcess } from '../harness/node-process.ts'
import { basic, call, callOk, convergedWith, writeSecret, writeUsers, type CallResult, type Checksum } from '../harness/auth.ts'

const dir = mkdtempSync(join(tmpdir(), 'tandem-attacks-'))
const secret = writeSecret(dir, 'cluster-secret', 'the attacked cluster secret, 32 bytes')
const otherSecret = writeSecret(dir, 'other-secret', 'some other cluster secret, 32 bytes')
const usersFile = writeUsers(dir, 'users', [
  { username: 'admin', password: 'admin pw', perms: ['all'] },
  // May read the stream as an embedded replica, as an application would.
  { username: 'follower', password: 'follower pw', perms: ['replicate'] },
  { username: 'reader', password: 'reader pw', perms: ['query'] },
])
const secured = ['--auth', usersFile, '--cluster-secret-file', secret]
const admin = basic('admin', 'admin pw')
const follower = basic('follower', 'follower pw')
const appOrigin = 'http://app.example'

let cluster: Cluster
/** Another cluster, given the same users and even the same secret: only its cluster id differs. */
let other: Cluster
let master: string
/** Extra nodes a test starts, stopped in after(). */
const extra: NodeProcess[] = []

before(async () => {
  cluster = await Cluster.start({ replicas: 2, masterArgs: [...secured, '--cors-origin', appOrigin], replicaArgs: secured })
  other = await Cluster.start({ replicas: 0, masterArgs: secured })
  master = cluster.master.url
  await callOk(`${master}/db/execute`, { auth: admin, body: ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)', "INSERT INTO t(v) VALUES ('ours 1')", "INSERT INTO t(v) VALUES ('ours 2')"] })
  await callOk(`${other.master.url}/db/execute`, { auth: admin, body: ['CREATE TABLE theirs (id INTEGER PRIMARY KEY)', 'INSERT INTO theirs VALUES (1)'] })
  await converged()
})

after(async () => {
  await Promise.all(extra.map((n) => n.kill()))
  await cluster?.stop()
  await other?.stop()
  rmSync(dir, { recursive: true, force: true })
})

function converged(lsn = 0): Promise<Checksum> {
  return convergedWith(admin, [master, ...cluster.replicas.map((r) => r.url)], lsn)
}

interface NodeStatus {
  role: string
  epoch: number
  position: { epoch: number; lsn: number }
  node: { id: string; cluster_id: string }
  master?: { deposed_by_epoch: number | null }
  replicas?: { id: string; url: string; applied_lsn: number }[]
  replication?: { state: string; master_url: string; applied_lsn: number; last_problem: string | null; peers: string[] }
}

const statusOf = (url: string) => callOk<NodeStatus>(`${url}/status`, { auth: admin })

/** What no attack may change: the master's data, its epoch, that it is the master, and that it takes writes. */
async function fingerprint(url = master): Promise<{ data: Checksum; epoch: number; role: string; deposedBy: number | null; ready: number }> {
  const status = await statusOf(url)
  const data = await callOk<Checksum>(`${url}/db/checksum`, { auth: admin })
  const ready = (await call(`${url}/readyz`, { auth: admin })).status
  return { data: { lsn: data.lsn, checksum: data.checksum }, epoch: status.epoch, role: status.role, deposedBy: status.master?.deposed_by_epoch ?? null, ready }
}

/** Runs `attack` and asserts the master is as it was before. */
async function leavesMasterUnchanged(attack: () => Promise<void>): Promise<void> {
  const before = await fingerprint()
  assert.deepEqual({ epoch: before.epoch, role: before.role, deposedBy: before.deposedBy, ready: before.ready }, { epoch: 1, role: 'master', deposedBy: null, ready: 200 }, 'the master before the attack')
  await attack()
  assert.deepEqual(await fingerprint(), before, 'the master\'s data, epoch and role after the attack')
}

function answer(result: CallResult<unknown>): string {
  return `HTTP ${result.status} ${typeof result.body === 'string' ? result.body.slice(0, 200) : JSON.stringify(result.body).slice(0, 300)}`
}

function assertRefused(result: CallResult, status: number, code: string, what: string): void {
  assert.equal(result.status, status, `${what}: ${answer(result)}`)
  assert.equal((result.body as { code?: string }).code, code, `${what}: ${answer(result)}`)
}

type Message = { type: string; code?: string; message?: string; [key: string]: unknown }

/**
 * A hand-driven client of the replication WebSocket, as an attacker would write one: it says
 * what it likes and records what the master answers. With `ack`, it acknowledges every entry it
 * receives at once, as an eager replica would.
 */
class RawStream {
  readonly messages: Message[] = []
  /** 101 once open; otherwise the status the upgrade was refused with. */
  readonly upgrade: Promise<{ status: number; body: string }>
  readonly closed: Promise<number>
  lastLsn = 0
  ackedLsn = 0
  private readonly ws: WebSocket
  private readonly nodeUrl: string

  constructor(nodeUrl: string, headers: Record<string, string>, options: { ack?: boolean } = {}) {
    this.nodeUrl = nodeUrl
    const ws = new WebSocket(`${nodeUrl.replace(/^http/, 'ws')}/replication`, { headers, handshakeTimeout: 5000 })
    this.ws = ws
    ws.on('error', () => undefined)
    this.upgrade = new Promise((resolve) => {
      ws.on('open', () => resolve({ status: 101, body: '' }))
      // Neither opened nor answered: the connection failed (the node is gone).
      ws.on('close', () => resolve({ status: 0, body: 'the connection closed before an answer' }))
      ws.on('unexpected-response', (_request, response) => {
        let body = ''
        response.on('data', (chunk: Buffer) => (body += chunk.toString()))
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, body })
          ws.terminate()
        })
      })
    })
    this.closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)))
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) {
        const entries = decodeEntries(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
        this.lastLsn = entries[entries.length - 1]?.lsn ?? this.lastLsn
        if (options.ack === true) this.ack(this.lastLsn)
        return
      }
      const message = JSON.parse(data.toString('utf8')) as Message
      this.messages.push(message)
      if (message.type === 'welcome') this.lastLsn = Math.max(this.lastLsn, Number(message['lsn']))
      if (options.ack === true && message.type === 'heartbeat') this.ack(this.lastLsn)
    })
  }

  send(message: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(message))
  }

  /** A hello from `nodeId` at the position of the master it talks to. */
  async hello(nodeId: string, url: string, knownEpoch = 1, extra: Record<string, unknown> = {}): Promise<void> {
    const { position } = await statusOf(this.nodeUrl)
    this.send({ type: 'hello', version: protocolVersion, nodeId, url, position, knownEpoch, ...extra })
  }

  /** The first message of `type` (or a refusal, which ends the session), within `timeoutMs`. */
  next(type: string, timeoutMs = 10_000): Promise<Message> {
    return waitFor(() => this.messages.find((m) => m.type === type || m.type === 'refuse'), timeoutMs, () => `a ${type} message; got ${JSON.stringify(this.messages)}`)
  }

  private ack(lsn: number): void {
    if (lsn <= this.ackedLsn) return
    this.ackedLsn = lsn
    this.send({ type: 'ack', lsn })
  }

  close(): void {
    this.ws.terminate()
  }
}

const write = (v: string, query = '') => call<{ lsn: number; sync?: { required: number; confirmed: number }; code?: string }>(`${master}/db/execute${query}`, { auth: admin, body: [['INSERT INTO t(v) VALUES (?)', v]] })

test('told to follow the master of another cluster (with admin credentials), the master and a replica refuse and change nothing', async () => {
  const ours = (await statusOf(master)).node.cluster_id
  const theirs = (await statusOf(other.master.url)).node.cluster_id
  assert.notEqual(ours, theirs)
  const replica = cluster.replicas[0]!.url
  await leavesMasterUnchanged(async () => {
    // A user may name only a known member of the cluster (the open cluster's test shows the
    // cluster id check behind it): the node never calls an unknown server with its token.
    assertRefused(await call(`${master}/cluster/follow`, { auth: admin, body: { master: other.master.url } }), 403, 'FORBIDDEN', 'follow on the master')
    assertRefused(await call(`${replica}/cluster/follow`, { auth: admin, body: { master: other.master.url } }), 403, 'FORBIDDEN', 'follow on a replica')
  })
  assert.equal((await statusOf(replica)).replication?.master_url, master, 'the replica still follows its master')
  assert.ok(!existsSync(join(cluster.master.spec.dataDir, 'node.json')), 'the master saved a change of role')
  const { lsn } = (await write('after the follow')).body
  await converged(lsn)
})

// The node token is a bearer credential: were follow to call whatever URL a user with `cluster`
// names, that user could collect it with a server of its own and pass for a node.
test('POST /cluster/follow naming a server of the caller\'s is refused, and the server never receives the node token', async () => {
  const seen: (string | string[] | undefined)[] = []
  const trap = createServer((request, response) => {
    seen.push(request.headers['x-tandem-node-token'])
    response.writeHead(500).end()
  })
  await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve))
  try {
    const { port } = trap.address() as AddressInfo
    await leavesMasterUnchanged(async () => {
      for (const url of [master, cluster.replicas[0]!.url]) {
        assertRefused(await call(`${url}/cluster/follow`, { auth: admin, body: { master: `http://127.0.0.1:${port}` } }), 403, 'FORBIDDEN', `follow a stranger on ${url}`)
      }
    })
    assert.deepEqual(seen.filter((token) => token !== undefined), [], 'the named server received the node token')
    // A member the replica knows (its own master) may be named.
    const known = await call(`${cluster.replicas[0]!.url}/cluster/follow`, { auth: admin, body: { master } })
    assert.equal(known.status, 200, answer(known))
  } finally {
    trap.close()
  }
})

test('POST /cluster/fence {epoch: 88} with admin credentials but no node token is refused (403), and no epoch moves', async () => {
  const replica = cluster.replicas[0]!.url
  await leavesMasterUnchanged(async () => {
    for (const url of [replica, master]) {
      const result = await call(`${url}/cluster/fence`, { auth: admin, body: { epoch: 88 } })
      assertRefused(result, 403, 'FORBIDDEN', `fence on ${url}`)
      assert.match((result.body as { error: string }).error, /only from a node of this cluster/)
    }
    // A guessed node token does not pass for one: the answer says the secrets differ.
    const guessed = await call(`${replica}/cluster/fence`, { auth: admin, body: { epoch: 88 }, headers: { 'x-tandem-node-token': '0'.repeat(64) } })
    assertRefused(guessed, 401, 'UNAUTHORIZED', 'fence with a guessed node token')
    assert.match((guessed.body as { error: string }).error, /does not match this node's cluster secret/)
  })
  const status = await statusOf(replica)
  assert.deepEqual([status.epoch, status.position.epoch], [1, 1], 'the replica\'s epoch')
  // Still following: an epoch of 88 would have made it refuse its master.
  const { lsn } = (await write('after the fence')).body
  await converged(lsn)
})

test('a client request carrying X-Tandem-Forwarded: 1 and X-Tandem-Epoch: 999 is written, and deposes nobody', async () => {
  const before = await fingerprint()
  const headers = { 'x-tandem-forwarded': '1', 'x-tandem-epoch': '999' }
  const forged = await call<{ lsn: number }>(`${master}/db/execute`, { auth: admin, headers, body: [["INSERT INTO t(v) VALUES ('forged epoch')"]] })
  assert.equal(forged.status, 200, answer(forged))
  const viaRequest = await call<{ lsn: number }>(`${master}/db/request`, { auth: admin, headers, body: [["INSERT INTO t(v) VALUES ('forged epoch, /db/request')"]] })
  assert.equal(viaRequest.status, 200, answer(viaRequest))
  const afterwards = await fingerprint()
  assert.deepEqual({ epoch: afterwards.epoch, role: afterwards.role, deposedBy: afterwards.deposedBy, ready: afterwards.ready }, { epoch: before.epoch, role: 'master', deposedBy: null, ready: 200 })
  assert.equal(afterwards.data.lsn, before.data.lsn + 2, 'both writes were taken')
  assert.equal((await write('after the forged epoch')).status, 200, 'the master still takes writes')
})

test('the replication WebSocket refuses at the upgrade a caller without credentials (401), with a wrong password (401), and a user without replicate (403)', async () => {
  await leavesMasterUnchanged(async () => {
    const cases: [string, Record<string, string>, number][] = [
      ['no credentials', {}, 401],
      ['a wrong password', { authorization: basic('admin', 'wrong') }, 401],
      ['a user without replicate', { authorization: basic('reader', 'reader pw') }, 403],
    ]
    for (const [who, headers, status] of cases) {
      const stream = new RawStream(master, headers)
      const upgrade = await stream.upgrade
      assert.equal(upgrade.status, status, `${who}: ${upgrade.body}`)
      stream.close()
    }
  })
})

test('clients that reset the connection while their replication upgrade is refused do not bring the master down', async () => {
  const { hostname, port } = new URL(master)
  const upgrade = (extra: string) =>
    `GET /replication HTTP/1.1\r\nHost: ${hostname}:${port}\r\n${extra}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`
  await leavesMasterUnchanged(async () => {
    // Refused at once (no credentials, a foreign Origin), or after a password check (new credentials each time).
    const kinds = [() => upgrade(''), () => upgrade('Origin: http://evil.example\r\n'), () => upgrade(`Authorization: ${basic('admin', `guess ${Math.random()}`)}\r\n`)]
    for (let i = 0; i < 300; i++) {
      await new Promise<void>((resolve) => {
        const socket = connect(Number(port), hostname, () => {
          socket.write(kinds[i % kinds.length]!())
          setImmediate(() => {
            socket.resetAndDestroy()
            resolve()
          })
        })
        socket.on('error', () => resolve())
      })
    }
  })
  assert.ok(cluster.master.isRunning, `the master exited:\n${cluster.master.log.slice(-5).join('\n')}`)
})

test('a user session (admin, no node token) saying hello with a replica\'s URL is refused, and joins no peer list', async () => {
  const fakeUrl = 'http://127.0.0.1:9'
  await leavesMasterUnchanged(async () => {
    const stream = new RawStream(master, { authorization: admin })
    assert.equal((await stream.upgrade).status, 101)
    await stream.hello('fake-replica', fakeUrl)
    const refusal = await stream.next('welcome')
    assert.deepEqual([refusal.type, refusal.code], ['refuse', 'FORBIDDEN'], JSON.stringify(refusal))
    await stream.closed
  })
  // Entries after the refusal reach the replicas after any heartbeat the hello could have caused.
  const { lsn } = (await write('after the fake hello')).body
  await converged(lsn)
  const status = await statusOf(master)
  assert.ok(!status.replicas!.some((r) => r.id === 'fake-replica'), JSON.stringify(status.replicas))
  for (const replica of cluster.replicas) assert.ok(!(await statusOf(replica.url)).replication!.peers.includes(fakeUrl), `${replica.url} lists the fake replica as a peer`)
})

test('a user with replicate may follow as an embedded replica, but its hello with knownEpoch 999 and its confirmed with epoch 999 depose nobody', async () => {
  await leavesMasterUnchanged(async () => {
    const stream = new RawStream(master, { authorization: follower })
    assert.equal((await stream.upgrade).status, 101)
    await stream.hello('embedded-reader', 'embedded://reader', 999)
    assert.equal((await stream.next('welcome')).type, 'welcome', 'an embedded replica of a user with replicate is served')
    stream.send({ type: 'confirmed', id: 1, epoch: 999 })
    const refusal = await stream.next('refuse')
    assert.match(String(refusal.message), /only a node of this cluster answers confirm/)
    await stream.closed
    // A bare confirmed, before any hello, too.
    const bare = new RawStream(master, { authorization: follower })
    assert.equal((await bare.upgrade).status, 101)
    bare.send({ type: 'confirmed', id: 1, epoch: 999 })
    assert.equal((await bare.next('refuse')).type, 'refuse')
    await bare.closed
  })
})

test('20 hellos reusing a real replica\'s node id are refused; the real replica stays connected and sync=1 writes still succeed', async () => {
  const real = cluster.replicas[0]!
  const listed = (await statusOf(master)).replicas!
  assert.ok(listed.some((r) => r.id === real.id), `the master lists ${real.id}: ${JSON.stringify(listed)}`)
  const connections = () => cluster.master.log.filter((line) => line.includes('"msg":"replica connected"') && line.includes(`"replica":"${real.id}"`)).length
  const connectedBefore = connections()
  assert.ok(connectedBefore >= 1, 'the master logged the replica connecting')
  await leavesMasterUnchanged(async () => {
    for (let i = 0; i < 20; i++) {
      // Half as an embedded replica (a user with replicate), half with the replica's own URL (admin).
      const [auth, url] = i % 2 === 0 ? [follower, 'embedded://thief'] : [admin, real.url]
      const stream = new RawStream(master, { authorization: auth })
      assert.equal((await stream.upgrade).status, 101)
      await stream.hello(real.id, url)
      const refusal = await stream.next('welcome')
      assert.deepEqual([refusal.type, refusal.code], ['refuse', 'FORBIDDEN'], `hello ${i + 1}: ${JSON.stringify(refusal)}`)
      await stream.closed
    }
  })
  const synced = await write('after the stolen ids', '?sync=1&sync_timeout=10s')
  assert.equal(synced.status, 200, answer(synced))
  assert.ok((synced.body.sync?.confirmed ?? 0) >= 1, JSON.stringify(synced.body))
  await waitFor(async () => ((await statusOf(real.url)).replication!.applied_lsn >= synced.body.lsn ? true : undefined), 10_000, () => `${real.id} to apply LSN ${synced.body.lsn}`)
  assert.equal(connections(), connectedBefore, 'the real replica was disconnected and connected again')
})

test('a user session that offers to run jobs is refused and receives no task; a forged result records nothing', async () => {
  const submission = await call<{ id: string }>(`${master}/jobs`, { auth: admin, body: { name: 'stolenTask', input: { secret: 's3cr3t' } } })
  assert.equal(submission.status, 201, answer(submission))
  const submitted = submission.body
  const jobBefore = await callOk<{ state: string }>(`${master}/jobs/${submitted.id}`, { auth: admin })
  const worker = new RawStream(master, { authorization: follower })
  assert.equal((await worker.upgrade).status, 101)
  await worker.hello('fake-worker', 'embedded://worker')
  assert.equal((await worker.next('welcome')).type, 'welcome')
  worker.send({ type: 'worker', handlers: ['stolenTask'], concurrency: 4, running: [] })
  const refusal = await worker.next('refuse')
  assert.match(String(refusal.message), /only a node of this cluster runs jobs/)
  await worker.closed
  assert.ok(!worker.messages.some((m) => m.type === 'assign'), `the fake worker was assigned a task: ${JSON.stringify(worker.messages)}`)
  assert.ok(!JSON.stringify(worker.messages).includes('s3cr3t'), 'the task input reached the fake worker')

  const forger = new RawStream(master, { authorization: follower })
  assert.equal((await forger.upgrade).status, 101)
  await forger.hello('fake-forger', 'embedded://forger')
  assert.equal((await forger.next('welcome')).type, 'welcome')
  forger.send({ type: 'result', job: submitted.id, index: 0, epoch: 1, token: 1, ok: true, value: '"forged"' })
  assert.equal((await forger.next('refuse')).type, 'refuse')
  await forger.closed
  const job = await callOk<{ state: string }>(`${master}/jobs/${submitted.id}`, { auth: admin })
  assert.equal(job.state, jobBefore.state, JSON.stringify(job))
  assert.ok(!JSON.stringify(job).includes('forged'), JSON.stringify(job))
})

test('a hello whose release is not a short version string is refused (PROTOCOL_ERROR) and lists nothing', async () => {
  for (const release of ['x'.repeat(65), '1.0 <script>', 7, { v: 1 }, '']) {
    const stream = new RawStream(master, { authorization: follower })
    assert.equal((await stream.upgrade).status, 101)
    await stream.hello('odd-release', 'embedded://odd', 1, { release })
    const refusal = await stream.next('welcome')
    assert.deepEqual([refusal.type, refusal.code], ['refuse', 'PROTOCOL_ERROR'], `release ${JSON.stringify(release)}: ${JSON.stringify(refusal)}`)
    await stream.closed
  }
  const nodes = await call(`${master}/nodes`, { auth: admin })
  assert.equal(JSON.stringify(nodes.body).includes('odd-release'), false, JSON.stringify(nodes.body))
})

test('sync=3 with two real replicas and a user session acknowledging every entry is not confirmed three times (SYNC_TIMEOUT)', async () => {
  const fake = new RawStream(master, { authorization: follower }, { ack: true })
  assert.equal((await fake.upgrade).status, 101)
  await fake.hello('eager-acker', 'embedded://eager')
  assert.equal((await fake.next('welcome')).type, 'welcome')
  const result = await write('sync three', '?sync=3&sync_timeout=1s')
  assert.equal(result.status, 202, answer(result))
  assert.equal(result.body.code, 'SYNC_TIMEOUT')
  assert.equal(result.body.sync?.required, 3)
  assert.ok((result.body.sync?.confirmed ?? 3) <= 2, `confirmed by ${result.body.sync?.confirmed}: the fake counted`)
  // The fake did acknowledge the entry: only the master's refusal to count it kept the answer honest.
  await waitFor(() => (fake.ackedLsn >= result.body.lsn ? true : undefined), 10_000, () => `the fake to acknowledge LSN ${result.body.lsn} (acked ${fake.ackedLsn})`)
  fake.close()
})

test('a replica given another cluster secret is refused (401, the secrets differ), says so in its status, never becomes ready, and the master is unchanged', async () => {
  await leavesMasterUnchanged(async () => {
    const stranger = await NodeProcess.start({ role: 'replica', dataDir: join(dir, 'wrong-secret'), masterUrl: master, args: ['--auth', usersFile, '--cluster-secret-file', otherSecret] })
    extra.push(stranger)
    let problem: string | null = null
    await waitFor(async () => {
      problem = (await statusOf(stranger.url)).replication!.last_problem
      return problem?.includes('HTTP 401') === true ? problem : undefined
    }, 10_000, () => `the replica to report a 401 from its master; it says: ${problem}`)
    assert.match(problem!, /does not match this node's cluster secret/)
    // Tried again and again (with backoff), refused each time: never streaming, never ready.
    const waited = await waitFor(async () => {
      const replication = (await statusOf(stranger.url)).replication!
      return replication.state !== 'streaming' && (await call(`${stranger.url}/readyz`, { auth: admin })).status === 503 ? replication : undefined
    }, 10_000)
    assert.equal(waited.applied_lsn, 0)
    assert.ok(!(await statusOf(master)).replicas!.some((r) => r.id === stranger.id), 'the master lists the replica')
    await stranger.kill()
  })
})

test('a replica of this cluster pointed at the master of another is refused with CLUSTER_MISMATCH and keeps its data; a snapshot is refused to another cluster too', async () => {
  const ours = (await statusOf(master)).node.cluster_id
  const theirs = await fingerprint(other.master.url)
  const replica = await NodeProcess.start({ role: 'replica', dataDir: join(dir, 'wanderer'), masterUrl: master, args: secured })
  extra.push(replica)
  const caughtUp = await convergedWith(admin, [master, replica.url])
  assert.ok(caughtUp.lsn > 0)
  await replica.restart({ masterUrl: other.master.url })
  let problem: string | null = null
  await waitFor(async () => {
    problem = (await statusOf(replica.url)).replication!.last_problem
    return problem?.includes('CLUSTER_MISMATCH') === true ? problem : undefined
  }, 10_000, () => `the replica to report CLUSTER_MISMATCH; it says: ${problem}`)
  const status = await statusOf(replica.url)
  assert.equal(status.node.cluster_id, ours, 'the replica still belongs to its cluster')
  const kept = await callOk<Checksum>(`${replica.url}/db/checksum`, { auth: admin })
  assert.deepEqual({ lsn: kept.lsn, checksum: kept.checksum }, caughtUp, 'the replica\'s data')
  assert.ok(!existsSync(join(replica.spec.dataDir, 'replaced')), 'the replica replaced its database')
  assert.deepEqual(await fingerprint(other.master.url), theirs, 'the other master')
  assert.ok(!(await statusOf(other.master.url)).replicas!.some((r) => r.id === replica.id), 'the other master serves the replica')

  // Each door on its own, asked for another cluster (admin credentials, our cluster id): the hello, and the snapshot.
  const stream = new RawStream(other.master.url, { authorization: admin })
  assert.equal((await stream.upgrade).status, 101)
  await stream.hello('wanderer', 'embedded://wanderer', 1, { clusterId: ours })
  const refusal = await stream.next('welcome')
  assert.deepEqual([refusal.type, refusal.code], ['refuse', 'CLUSTER_MISMATCH'], JSON.stringify(refusal))
  await stream.closed
  const snapshot = await call(`${other.master.url}/replication/snapshot`, { auth: admin, headers: { 'x-tandem-cluster': ours } })
  assertRefused(snapshot, 409, 'CLUSTER_MISMATCH', 'a snapshot for another cluster')
  await replica.kill()
})

test('a browser page is refused whatever credentials it sends: a foreign Host, a foreign Origin, a form POST to /cluster/fence, the WebSocket from a foreign Origin', async () => {
  const replica = cluster.replicas[0]!.url
  await leavesMasterUnchanged(async () => {
    // DNS rebinding: the page's own host name, resolved to 127.0.0.1.
    const rebound = await call(`${master}/db/execute`, { auth: admin, body: "INSERT INTO t(v) VALUES ('rebound')", headers: { host: 'evil.example', 'content-type': 'text/plain' } })
    assertRefused(rebound, 403, 'FORBIDDEN', 'a text/plain write with Host: evil.example')
    assert.match((rebound.body as { error: string }).error, /does not serve the host name/)
    const crossOrigin = await call(`${master}/db/execute`, { auth: admin, body: "INSERT INTO t(v) VALUES ('cross origin')", headers: { origin: 'http://evil.example', 'content-type': 'text/plain' } })
    assertRefused(crossOrigin, 403, 'FORBIDDEN', 'a text/plain write with Origin: http://evil.example')
    assert.match((crossOrigin.body as { error: string }).error, /pages of http:\/\/evil\.example/)
    // A text/plain form can carry a JSON body: {"epoch":88,"x":"="}.
    for (const url of [master, replica]) {
      const form = await call(`${url}/cluster/fence`, { auth: admin, body: '{"epoch":88,"x":"="}', headers: { origin: 'http://evil.example', 'content-type': 'text/plain' } })
      assertRefused(form, 403, 'FORBIDDEN', `a form POST to /cluster/fence on ${url}`)
      assert.match((form.body as { error: string }).error, /pages of http:\/\/evil\.example/)
    }
    for (const headers of [{ origin: 'http://evil.example' }, { host: 'evil.example' }]) {
      const stream = new RawStream(master, { authorization: admin, ...headers })
      assert.equal((await stream.upgrade).status, 403, `the replication WebSocket with ${JSON.stringify(headers)}`)
    }
  })
  assert.equal((await statusOf(replica)).epoch, 1, 'the replica\'s epoch')
})

test('--cors-origin lets that origin\'s pages in, with access-control-allow-origin; a same-origin page needs no CORS', async () => {
  const allowed = await call(`${master}/db/query?q=${encodeURIComponent('SELECT COUNT(*) FROM t')}`, { auth: admin, headers: { origin: appOrigin } })
  assert.equal(allowed.status, 200, answer(allowed))
  assert.equal(allowed.headers['access-control-allow-origin'], appOrigin)
  const written = await call(`${master}/db/execute`, { auth: admin, body: [["INSERT INTO t(v) VALUES ('from the app')"]], headers: { origin: appOrigin } })
  assert.equal(written.status, 200, answer(written))
  assert.equal(written.headers['access-control-allow-origin'], appOrigin)
  const preflight = await call(`${master}/db/execute`, { method: 'OPTIONS', headers: { origin: appOrigin, 'access-control-request-method': 'POST' } })
  assert.equal(preflight.status, 200)
  assert.equal(preflight.headers['access-control-allow-origin'], appOrigin)
  const foreignPreflight = await call(`${master}/db/execute`, { method: 'OPTIONS', headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } })
  assert.equal(foreignPreflight.headers['access-control-allow-origin'], undefined, 'a preflight from another origin is not allowed')
  // The node's own pages (the dashboard) are same-origin.
  const sameOrigin = await call(`${master}/status`, { auth: admin, headers: { origin: master } })
  assert.equal(sameOrigin.status, 200, answer(sameOrigin))
  assert.equal(sameOrigin.headers['access-control-allow-origin'], undefined)
  // The replica was not given --cors-origin.
  const replica = cluster.replicas[0]!.url
  assertRefused(await call(`${replica}/status`, { auth: admin, headers: { origin: appOrigin } }), 403, 'FORBIDDEN', 'the app\'s origin on a replica without --cors-origin')
})
