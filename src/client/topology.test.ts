import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isTandemClientError } from './client-errors.ts'
import { HttpFailure, type HttpRequest, type HttpResponse, type Transport } from './http-transport.ts'
import { Topology } from './topology.ts'

/** A node with --auth refusing the caller, as its gate answers. */
class Refusal {
  readonly status: 401 | 403
  readonly error: string

  constructor(status: 401 | 403, error: string) {
    this.status = status
    this.error = error
  }
}

/** Nodes answering /nodes from a table; a node missing from it refuses connections. */
function fakeTransport(answers: Map<string, unknown>): Transport & { asked: string[] } {
  const asked: string[] = []
  return {
    asked,
    send(request: HttpRequest): Promise<HttpResponse> {
      asked.push(`${request.node}${request.path}`)
      const answer = answers.get(request.node)
      if (answer === undefined) return Promise.reject(new HttpFailure(request.node, false, new Error('connect ECONNREFUSED')))
      if (answer instanceof Refusal) {
        const code = answer.status === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN'
        return Promise.resolve({ status: answer.status, headers: {}, body: JSON.stringify({ results: [], error: answer.error, code }) })
      }
      if (!request.path.startsWith('/nodes')) return Promise.resolve({ status: 404, headers: {}, body: '{}' })
      return Promise.resolve({ status: 200, headers: {}, body: JSON.stringify(answer) })
    },
    stream: () => Promise.reject(new Error('no streams here')),
    close: () => Promise.resolve(),
  }
}

const master = 'http://m:1'
const node = (url: string, role: string, lagMs = 0, reachable = true) => ({ id: url, api_addr: url, role, reachable, applied_lsn: 0, lag_entries: lagMs > 0 ? 1 : 0, lag_ms: lagMs })

function topologyOf(answers: Map<string, unknown>, seeds: string[], clock = { now: () => 0 }, lagToleranceMs = 100) {
  const transport = fakeTransport(answers)
  return { transport, topology: new Topology({ seeds, transport, clock, discoveryTimeoutMs: 1_000, cooldownMs: 1_000, lagToleranceMs }) }
}

test('discovery skips a dead seed and learns master and replicas from a live one', async () => {
  const view = { nodes: [node(master, 'master'), node('http://r:1', 'replica'), node('http://r:2', 'replica')] }
  const { topology } = topologyOf(new Map([['http://r:1', view]]), ['http://dead:1', 'http://r:1/'])
  const learned = await topology.refresh()
  assert.equal(learned.master, master)
  assert.deepEqual(learned.replicas.map((r) => r.url), ['http://r:1', 'http://r:2'])
})

test('an answer naming a reachable master wins over a replica that lost its master', async () => {
  const lost = { nodes: [node('http://old:1', 'master', 0, false), node('http://r:1', 'replica')] }
  const good = { nodes: [node(master, 'master'), node('http://r:2', 'replica')] }
  const { topology } = topologyOf(new Map<string, unknown>([['http://r:1', lost], [master, good]]), ['http://r:1', master])
  assert.equal((await topology.refresh()).master, master)
})

test('no node answering is UNAVAILABLE', async () => {
  const { topology } = topologyOf(new Map(), ['http://dead:1', 'http://dead:2'])
  await assert.rejects(topology.refresh(), (error) => isTandemClientError(error, 'UNAVAILABLE') && /dead:1/.test(error.message))
})

test('a node refusing the credentials fails discovery with UNAUTHORIZED and the server\'s message, asked once', async () => {
  const { topology, transport } = topologyOf(new Map<string, unknown>([[master, new Refusal(401, 'wrong user name or password for "alice"')]]), [master, 'http://dead:1'])
  await assert.rejects(topology.refresh(), (error) => {
    assert.ok(isTandemClientError(error, 'UNAUTHORIZED'), String(error))
    assert.equal(error.status, 401)
    assert.match(error.message, /wrong user name or password for "alice"/)
    assert.match(error.message, /status permission/)
    return true
  })
  // /status needs the same permission: asking it too would only double the refusals.
  assert.deepEqual(transport.asked.filter((a) => a.startsWith(master)), [`${master}/nodes?ver=2`])
})

test('a user without the status permission fails discovery with FORBIDDEN naming the permission', async () => {
  const { topology } = topologyOf(new Map([[master, new Refusal(403, 'user reader lacks the status permission, which GET /nodes needs')]]), [master])
  await assert.rejects(topology.refresh(), (error) => isTandemClientError(error, 'FORBIDDEN') && /lacks the status permission/.test(error.message) && /give this user status/.test(error.message))
})

test('a refusal from one node does not hide a good answer from another', async () => {
  const view = { nodes: [node(master, 'master'), node('http://r:1', 'replica')] }
  const { topology } = topologyOf(new Map<string, unknown>([['http://r:1', new Refusal(401, 'no')], [master, view]]), ['http://r:1', master])
  assert.equal((await topology.refresh()).master, master)
})

test('reads go round robin over the least-lagging replicas, then the laggards, then the master', async () => {
  const view = { nodes: [node(master, 'master'), node('http://a:1', 'replica', 5), node('http://b:1', 'replica', 40), node('http://slow:1', 'replica', 900)] }
  const { topology } = topologyOf(new Map([[master, view]]), [master])
  await topology.refresh()
  const firsts = Array.from({ length: 6 }, () => topology.readOrder('replicas'))
  assert.deepEqual(firsts.map((o) => o[0]), ['http://a:1', 'http://b:1', 'http://a:1', 'http://b:1', 'http://a:1', 'http://b:1'])
  for (const order of firsts) assert.deepEqual(order.slice(2), ['http://slow:1', master])
  assert.deepEqual(topology.readOrder('master'), [master])
})

test('a replica that failed sits out its cooldown, then comes back', async () => {
  let now = 0
  const view = { nodes: [node(master, 'master'), node('http://a:1', 'replica'), node('http://b:1', 'replica')] }
  const { topology } = topologyOf(new Map([[master, view]]), [master], { now: () => now })
  await topology.refresh()
  topology.reportFailure('http://a:1')
  for (let i = 0; i < 4; i++) assert.deepEqual(topology.readOrder('replicas'), ['http://b:1', master, 'http://a:1'])
  now = 1_001
  const seen = new Set(Array.from({ length: 4 }, () => topology.readOrder('replicas')[0]))
  assert.deepEqual([...seen].sort(), ['http://a:1', 'http://b:1'])
})

test('a redirect names the new master at once', async () => {
  const view = { nodes: [node(master, 'master'), node('http://a:1', 'replica')] }
  const { topology } = topologyOf(new Map([[master, view]]), [master])
  await topology.refresh()
  topology.redirectMaster('http://a:1/')
  assert.equal(topology.snapshot().master, 'http://a:1')
  assert.ok(!topology.readOrder('replicas').slice(0, -1).includes('http://a:1'), 'the new master is not read from as a replica')
})
