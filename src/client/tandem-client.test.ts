/**
 * The client's retry rules against scripted nodes: answers a real cluster gives only in rare
 * moments (a connection lost after the request was sent, a 500, a promotion) are played here on
 * purpose. The same client runs against real processes in tests/cluster/client.test.ts.
 */
import { afterEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { IndeterminateWriteError, SyncTimeoutError, isTandemClientError } from './client-errors.ts'
import { connect, type TandemClient } from './tandem-client.ts'

interface Seen {
  method: string
  path: string
  headers: IncomingMessage['headers']
  body: string
}

type Handler = (request: Seen, response: ServerResponse) => void

/** A scripted node: /nodes answers the shared cluster description, everything else `handle`. */
class FakeNode {
  readonly seen: Seen[] = []
  /** The Authorization header of each /nodes request (discovery). */
  readonly discoveryAuthorizations: (string | undefined)[] = []
  handle: Handler = (_request, response) => reply(response, 404, { results: [], error: 'no script', code: 'NOT_FOUND' })
  /** Answer every request with `Connection: close`. */
  closesConnections = false
  private readonly server: Server
  readonly url: string

  private constructor(server: Server, url: string) {
    this.server = server
    this.url = url
  }

  static async start(cluster: { nodes: () => unknown }): Promise<FakeNode> {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const node = new FakeNode(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      let body = ''
      request.on('data', (chunk: Buffer) => (body += chunk.toString()))
      request.on('end', () => {
        if (node.closesConnections) response.setHeader('connection', 'close')
        const path = request.url ?? ''
        if (path.startsWith('/nodes')) {
          node.discoveryAuthorizations.push(request.headers.authorization)
          return reply(response, 200, cluster.nodes())
        }
        const seen = { method: request.method ?? '', path, headers: request.headers, body }
        node.seen.push(seen)
        node.handle(seen, response)
      })
    })
    return node
  }

  executes(): Seen[] {
    return this.seen.filter((s) => s.path.startsWith('/db/execute'))
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

function reply(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json', ...headers })
  response.end(JSON.stringify(body))
}

const ok = (lsn: number) => (_request: Seen, response: ServerResponse) =>
  reply(response, 200, { results: [{ last_insert_id: 1, rows_affected: 1 }], lsn }, { 'x-tandem-lsn': String(lsn) })

const entry = (url: string, role: 'master' | 'replica') => ({ id: url, api_addr: url, role, reachable: true, applied_lsn: 0, lag_entries: 0, lag_ms: 0 })

describe('the client against scripted nodes', () => {
  let nodes: FakeNode[] = []
  let clients: TandemClient[] = []
  let masterUrl = ''
  const cluster = { nodes: () => ({ nodes: nodes.map((n) => entry(n.url, n.url === masterUrl ? 'master' : 'replica')) }) }

  async function start(count: number): Promise<FakeNode[]> {
    nodes = await Promise.all(Array.from({ length: count }, () => FakeNode.start(cluster)))
    masterUrl = nodes[0]!.url
    return nodes
  }
  async function client(options: Parameters<typeof connect>[1] = {}): Promise<TandemClient> {
    const db = await connect(nodes.map((n) => n.url), { refreshMs: 0, timeoutMs: 2_000, ...options })
    clients.push(db)
    return db
  }

  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close()))
    await Promise.all(nodes.map((n) => n.stop()))
    clients = []
    nodes = []
  })

  test('a write whose connection is lost after sending is indeterminate and is sent once', async () => {
    const [master] = await start(1)
    master!.handle = (request, response) => response.socket?.destroy()
    const db = await client()
    await assert.rejects(db.execute('INSERT INTO t VALUES (1)'), (error) => error instanceof IndeterminateWriteError && error.reason === 'connection-lost' && !error.isRetryable)
    assert.equal(master!.executes().length, 1)
  })

  test('with an idempotency key the same lost write is retried, with the same key, and succeeds', async () => {
    const [master] = await start(1)
    master!.handle = (_request, response) => {
      if (master!.executes().length === 1) return response.socket?.destroy()
      ok(5)(_request, response)
    }
    const db = await client()
    const result = await db.execute('INSERT INTO t VALUES (1)', [], { idempotencyKey: 'order-17' })
    assert.equal(result.lsn, 5)
    assert.deepEqual(master!.executes().map((s) => s.headers['idempotency-key']), ['order-17', 'order-17'])
  })

  test('a write that times out after sending is indeterminate; one aborted in flight too', async () => {
    const [master] = await start(1)
    master!.handle = () => {} // never answers
    const db = await client()
    await assert.rejects(db.execute('INSERT INTO t VALUES (1)', [], { timeoutMs: 200 }), (error) => error instanceof IndeterminateWriteError && error.reason === 'timeout')
    const controller = new AbortController()
    const pending = db.execute('INSERT INTO t VALUES (2)', [], { signal: controller.signal })
    setTimeout(() => controller.abort(), 50)
    await assert.rejects(pending, (error) => error instanceof IndeterminateWriteError && error.reason === 'aborted')
    assert.equal(master!.executes().length, 2)
  })

  test('tx sends every statement in one request with transaction; a callback that throws sends nothing', async () => {
    const [master] = await start(1)
    master!.handle = (_request, response) =>
      reply(response, 200, { results: [{ rows_affected: 1, last_insert_id: 1 }, { rows_affected: 2 }], lsn: 4 }, { 'x-tandem-lsn': '4' })
    const db = await client()
    const out = await db.tx(async (t) => {
      t.execute('INSERT INTO t VALUES (?)', [1])
      await Promise.resolve() // the callback may await between statements
      return t.execute('UPDATE t SET v = :v', { v: 'x' })
    })
    assert.equal(out.value, 1)
    assert.deepEqual(out.results, [{ rowsAffected: 1, lastInsertId: 1 }, { rowsAffected: 2, lastInsertId: 0 }])
    assert.equal(master!.executes().length, 1)
    assert.match(master!.executes()[0]!.path, /^\/db\/execute\?redirect&blob_array&transaction$/)
    assert.deepEqual(JSON.parse(master!.executes()[0]!.body), [['INSERT INTO t VALUES (?)', 1], ['UPDATE t SET v = :v', { v: 'x' }]])
    await assert.rejects(db.tx((t) => { t.execute('DELETE FROM t'); throw new Error('no') }), /no/)
    let escaped: (() => void) | undefined
    await db.tx((t) => {
      t.execute('DELETE FROM t')
      escaped = () => t.execute('DELETE FROM u')
    })
    assert.throws(() => escaped!(), (error) => isTandemClientError(error, 'BAD_REQUEST') && /already sent/.test(error.message))
    assert.equal(master!.executes().length, 2)
  })

  test('a write aborted before it is sent is ABORTED and reaches no node', async () => {
    const [master] = await start(1)
    const db = await client()
    await assert.rejects(db.execute('INSERT INTO t VALUES (1)', [], { signal: AbortSignal.abort() }), (error) => isTandemClientError(error, 'ABORTED') && error.name === 'AbortError')
    assert.equal(master!.executes().length, 0)
  })

  test('a 500 on a write is indeterminate and not retried', async () => {
    const [master] = await start(1)
    master!.handle = (_request, response) => reply(response, 500, { results: [], error: 'internal error: boom', code: 'INTERNAL' })
    const db = await client()
    await assert.rejects(db.execute('INSERT INTO t VALUES (1)'), (error) => error instanceof IndeterminateWriteError && error.reason === 'server-error')
    assert.equal(master!.executes().length, 1)
  })

  test('503s are retried (nothing was applied) until the master takes the write', async () => {
    const [master] = await start(1)
    master!.handle = (request, response) => {
      if (master!.executes().length < 3) return reply(response, 503, { results: [], error: 'the write queue is full', code: 'OVERLOADED' })
      ok(9)(request, response)
    }
    const db = await client()
    assert.equal((await db.execute('INSERT INTO t VALUES (1)')).lsn, 9)
    assert.equal(master!.executes().length, 3)
  })

  test('a 4xx is the answer: thrown with its code, not retried', async () => {
    const [master] = await start(1)
    master!.handle = (_request, response) => reply(response, 422, { results: [], error: 'key reused', code: 'IDEMPOTENCY_KEY_REUSED' })
    const db = await client()
    await assert.rejects(db.execute('INSERT INTO t VALUES (1)', [], { idempotencyKey: 'k' }), (error) => isTandemClientError(error, 'IDEMPOTENCY_KEY_REUSED') && error.status === 422)
    assert.equal(master!.executes().length, 1)
  })

  test('NOT_MASTER and a 301 send the write to the master they name', async () => {
    const [a, b, c] = await start(3)
    a!.handle = (_request, response) => reply(response, 421, { results: [], error: 'a replica', code: 'NOT_MASTER', master: b!.url })
    b!.handle = (request, response) => reply(response, 301, {}, { location: `${c!.url}${request.path}` })
    c!.handle = ok(3)
    const db = await client()
    masterUrl = c!.url // what /nodes says from now on; the client still believes a is the master
    const result = await db.execute('INSERT INTO t VALUES (1)')
    assert.equal(result.node, c!.url)
    assert.equal(db.topology().master, c!.url)
    assert.match(c!.executes()[0]!.path, /^\/db\/execute\?redirect/)
  })

  test('after a promotion the client finds the new master and sends the write there', async () => {
    const [a, b] = await start(2)
    // No keep-alive: the next write must open a connection, which the stopped node refuses. (On a
    // kept-alive connection the write could meet the node's death in flight: indeterminate.)
    a!.closesConnections = true
    a!.handle = ok(1)
    b!.handle = ok(2)
    const db = await client()
    assert.equal((await db.execute('INSERT INTO t VALUES (1)')).node, a!.url)
    await a!.stop() // the old master is gone: connections are refused, nothing was sent
    masterUrl = b!.url // and b was promoted
    const result = await db.execute('INSERT INTO t VALUES (2)')
    assert.equal(result.node, b!.url)
    assert.equal(b!.executes().length, 1)
  })

  test('SYNC_TIMEOUT is a SyncTimeoutError carrying the LSN, not retried, and the session keeps the LSN', async () => {
    const [master] = await start(1)
    master!.handle = (_request, response) =>
      reply(response, 202, { results: [{ rows_affected: 1, last_insert_id: 4 }], lsn: 12, code: 'SYNC_TIMEOUT', error: 'not confirmed', sync: { required: 2, confirmed: 1 } }, { 'x-tandem-lsn': '12' })
    const db = await client()
    await assert.rejects(db.execute('INSERT INTO t VALUES (1)', [], { sync: 2, syncTimeoutMs: 100 }), (error) => {
      assert.ok(error instanceof SyncTimeoutError)
      assert.equal(error.lsn, 12)
      assert.deepEqual(error.sync, { required: 2, confirmed: 1 })
      assert.equal(error.isRetryable, false)
      return true
    })
    assert.equal(master!.executes().length, 1)
    assert.match(master!.executes()[0]!.path, /sync=2&sync_timeout=100ms/)
    assert.equal(db.session.lsn, 12)
  })

  test('a session read waits for the session LSN; a replica that times out on it hands the read to another', async () => {
    const [master, r1, r2] = await start(3)
    master!.handle = ok(7)
    const rows = (lsn: number) => (_request: Seen, response: ServerResponse) =>
      reply(response, 200, { results: [{ columns: ['v'], types: ['integer'], values: [[1]] }] }, { 'x-tandem-lsn': String(lsn) })
    r1!.handle = (request, response) =>
      /min_lsn=7/.test(request.path) ? reply(response, 503, { results: [], error: 'behind', code: 'MIN_LSN_TIMEOUT' }) : rows(3)(request, response)
    r2!.handle = (request, response) => (/min_lsn=7/.test(request.path) ? rows(9) : rows(3))(request, response)
    const db = await client()
    await db.execute('INSERT INTO t VALUES (1)')
    for (let i = 0; i < 4; i++) {
      const result = await db.query('SELECT v FROM t')
      assert.equal(result.node, r2!.url)
    }
    assert.equal(db.session.lsn, 9, 'the served LSN raised the session')
    assert.ok(r2!.seen.every((s) => /level=none&blob_array&min_lsn=(7|9)&min_lsn_timeout=\d+ms/.test(s.path)), r2!.seen.map((s) => s.path).join())
    const other = db.withSession()
    assert.equal((await other.query('SELECT v FROM t', [], { node: r1!.url })).node, r1!.url, 'a new session has no LSN to wait for')
  })

  test('credentials ride on every request; credentials in a URL become auth and never show in the topology', async () => {
    const [master, replica] = await start(2)
    master!.handle = ok(2)
    replica!.handle = (_request, response) => reply(response, 200, { results: [{ columns: ['v'], types: ['integer'], values: [[1]] }] }, { 'x-tandem-lsn': '2' })
    const basic = `Basic ${Buffer.from('alice:s3cr:t@x').toString('base64')}`
    const withUrl = await connect([master!.url.replace('//', '//alice:s3cr%3At%40x@')], { refreshMs: 0, timeoutMs: 2_000 })
    clients.push(withUrl)
    await withUrl.execute('INSERT INTO t VALUES (1)')
    await withUrl.query('SELECT v FROM t')
    assert.deepEqual(master!.discoveryAuthorizations, [basic])
    assert.deepEqual([...master!.seen, ...replica!.seen].map((s) => s.headers.authorization), [basic, basic])
    assert.ok(!JSON.stringify(withUrl.topology()).includes('alice'), JSON.stringify(withUrl.topology()))
    const given = await client({ auth: { username: 'bob', password: 'pw' } })
    await given.execute('INSERT INTO t VALUES (2)')
    assert.equal(master!.executes().at(-1)!.headers.authorization, `Basic ${Buffer.from('bob:pw').toString('base64')}`)
  })

  test('a 401 or a 403 is thrown at once with the server\'s message: a write and a read are sent once', async () => {
    const [master, replica] = await start(2)
    master!.handle = (_request, response) => reply(response, 401, { results: [], error: 'wrong user name or password for "alice"', code: 'UNAUTHORIZED' }, { 'www-authenticate': 'Basic realm="tandem"' })
    replica!.handle = (_request, response) => reply(response, 403, { results: [], error: 'user alice lacks the query permission, which /db/query needs', code: 'FORBIDDEN' })
    const db = await client({ auth: { username: 'alice', password: 'nope' } })
    await assert.rejects(db.execute('INSERT INTO t VALUES (1)', [], { idempotencyKey: 'k1' }), (error) => isTandemClientError(error, 'UNAUTHORIZED') && error.status === 401 && /wrong user name or password/.test(error.message) && !error.isRetryable)
    await assert.rejects(db.query('SELECT 1', [], { node: replica!.url }), (error) => isTandemClientError(error, 'FORBIDDEN') && /lacks the query permission/.test(error.message))
    assert.equal(master!.executes().length, 1)
    assert.equal(replica!.seen.length, 1)
  })

  test('a read aborted while a node stalls is ABORTED; a read out of time is TIMEOUT', async () => {
    const [, r1] = await start(2)
    r1!.handle = () => {} // never answers
    const db = await client()
    const controller = new AbortController()
    const pending = db.query('SELECT 1', [], { node: r1!.url, signal: controller.signal })
    setTimeout(() => controller.abort(), 50)
    await assert.rejects(pending, (error) => isTandemClientError(error, 'ABORTED'))
    await assert.rejects(db.query('SELECT 1', [], { node: r1!.url, timeoutMs: 100 }), (error) => isTandemClientError(error, 'TIMEOUT') && error.isRetryable)
  })
})
