/**
 * Every answer is in Tandem's error shape, `{"results": [], "error", "code"}` with the
 * catalogue's status: the router's and node:http's own refusals included, and job inputs too
 * deep to handle.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { Cluster } from '../harness/cluster.ts'
import { get, post } from '../harness/http.ts'

interface ErrorBody {
  results: unknown[]
  error: string
  code: string
}

function assertShape(status: number, body: unknown, expectedStatus: number, code: string): void {
  assert.equal(status, expectedStatus, JSON.stringify(body))
  const error = body as ErrorBody
  assert.deepEqual(error.results, [], JSON.stringify(body))
  assert.equal(error.code, code)
  assert.equal(typeof error.error, 'string')
}

/** Sends raw bytes and returns the status and body of the answer, read until the node closes. */
function raw(url: string, bytes: string): Promise<{ status: number; body: unknown }> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const socket = connect(Number(port), hostname, () => socket.write(bytes))
    socket.setTimeout(30_000, () => socket.destroy(new Error('no answer in 30 s')))
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      const [head = '', body = ''] = text.split('\r\n\r\n')
      resolve({ status: Number(head.split(' ')[1]), body: JSON.parse(body) as unknown })
    })
  })
}

describe('error shape', () => {
  let cluster: Cluster
  before(async () => {
    cluster = await Cluster.start({ replicas: 0 })
  })
  after(async () => {
    await cluster.stop()
  })

  test('an unknown endpoint is a 404 NOT_FOUND', async () => {
    const answer = await get(`${cluster.master.url}/no/such/endpoint`)
    assertShape(answer.status, answer.body, 404, 'NOT_FOUND')
  })

  test('a 5,000-character job id is a 414 URI_TOO_LONG', async () => {
    const answer = await get(`${cluster.master.url}/jobs/${'a'.repeat(5000)}`)
    assertShape(answer.status, answer.body, 414, 'URI_TOO_LONG')
  })

  test('a malformed %-escape in the path is a 400 BAD_REQUEST', async () => {
    const answer = await raw(cluster.master.url, 'GET /jobs/%zz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n')
    assertShape(answer.status, answer.body, 400, 'BAD_REQUEST')
  })

  test('a request that is not HTTP is a 400 BAD_REQUEST', async () => {
    const answer = await raw(cluster.master.url, 'HELLO THERE\r\n\r\n')
    assertShape(answer.status, answer.body, 400, 'BAD_REQUEST')
  })

  test('headers over the size limit are a 431 HEADERS_TOO_LARGE', async () => {
    const answer = await raw(cluster.master.url, `GET /status HTTP/1.1\r\nhost: localhost\r\nx-big: ${'b'.repeat(20_000)}\r\n\r\n`)
    assertShape(answer.status, answer.body, 431, 'HEADERS_TOO_LARGE')
  })

  test('a job input nested 100,000 levels deep is a 400 BAD_REQUEST and nothing is enqueued', async () => {
    const deep = `{"name": "work", "input": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`
    const answer = await post(`${cluster.master.url}/jobs`, deep)
    assertShape(answer.status, answer.body, 400, 'BAD_REQUEST')
    assert.match((answer.body as unknown as ErrorBody).error, /64 levels/)
    const many = `{"name": "work", "inputs": [1, ${'['.repeat(65)}${']'.repeat(65)}]}`
    const second = await post(`${cluster.master.url}/jobs`, many)
    assertShape(second.status, second.body, 400, 'BAD_REQUEST')
    const list = await get<{ jobs: unknown[] }>(`${cluster.master.url}/jobs`)
    assert.deepEqual(list.body.jobs, [])
  })

  test('an input nested 64 levels deep is accepted', async () => {
    const answer = await post(`${cluster.master.url}/jobs`, `{"name": "work", "input": ${'['.repeat(64)}${']'.repeat(64)}}`)
    assert.equal(answer.status, 201, JSON.stringify(answer.body))
  })
})
