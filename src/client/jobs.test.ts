/**
 * `client.jobs` against a scripted master: the answers a real cluster gives only in rare moments
 * (a connection lost after a submission was sent, a 503) are played here on purpose. The same
 * API runs against real processes in tests/cluster/jobs-client.test.ts.
 */
import { afterEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { IndeterminateWriteError, isTandemClientError } from './client-errors.ts'
import { JobFailedError } from './job.ts'
import { connect, type TandemClient } from './tandem-client.ts'

interface Seen {
  method: string
  path: string
  body: string
}

type Handler = (request: Seen, response: ServerResponse) => void

/** A node that is the master of a one-node cluster and answers /jobs by script. */
class ScriptedMaster {
  readonly seen: Seen[] = []
  handle: Handler = (_request, response) => reply(response, 404, { error: 'no script', code: 'NOT_FOUND' })
  readonly url: string
  private readonly server: Server

  private constructor(server: Server, url: string) {
    this.server = server
    this.url = url
  }

  static async start(): Promise<ScriptedMaster> {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const master = new ScriptedMaster(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      let body = ''
      request.on('data', (chunk: Buffer) => (body += chunk.toString()))
      request.on('end', () => {
        const path = request.url ?? ''
        if (path.startsWith('/nodes')) return reply(response, 200, { nodes: [{ id: 'm', api_addr: master.url, role: 'master', reachable: true }] })
        const seen = { method: request.method ?? '', path, body }
        master.seen.push(seen)
        master.handle(seen, response)
      })
    })
    return master
  }

  submissions(): Seen[] {
    return this.seen.filter((s) => s.method === 'POST' && s.path.startsWith('/jobs?'))
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

function reply(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' })
  response.end(JSON.stringify(body))
}

const created = (id: string) => (_request: Seen, response: ServerResponse) => reply(response, 201, { id, state: 'queued', tasks: 1, lsn: 9, replayed: false })

function jobJson(id: string, state: string, results: unknown[] = [null], errors: unknown[] = []) {
  return {
    id,
    name: 'square',
    state,
    created_at: '2026-11-26T15:00:00.000Z',
    finished_at: state === 'running' ? null : '2026-11-26T15:00:01.000Z',
    lsn: 9,
    options: { attempts: 3, backoff: { type: 'exponential', delay_ms: 1000, jitter: 0, max_ms: 3600000 }, timeout_ms: 300000, priority: 0 },
    counts: { total: results.length, queued: 0, running: 0, done: 0, failed: 0, dead: errors.length, cancelled: 0 },
    progress: 0,
    results,
    errors,
    tasks: results.map((_, index) => ({ index, state: 'done', attempts: 1, worker: 'r1', progress: null, error: null })),
  }
}

describe('client.jobs against a scripted master', () => {
  let master: ScriptedMaster
  let db: TandemClient

  async function start(): Promise<void> {
    master = await ScriptedMaster.start()
    db = await connect(master.url, { refreshMs: 0, timeoutMs: 2_000 })
  }

  afterEach(async () => {
    await db.close()
    await master.stop()
  })

  test('options are sent in the master’s snake_case, and only those given', async () => {
    await start()
    master.handle = created('j_1')
    await db.jobs.submit('thumbnail', { id: 7 }, { attempts: 5, backoff: { delayMs: 10, maxMs: 100 }, timeoutMs: 10_000, priority: 2, delayMs: 50, idempotencyKey: 'k-1' })
    await db.jobs.submitMany('thumbnail', [1, undefined])
    const [one, many] = master.submissions().map((s) => JSON.parse(s.body) as unknown)
    assert.deepEqual(one, { name: 'thumbnail', input: { id: 7 }, attempts: 5, backoff: { delay_ms: 10, max_ms: 100 }, timeout_ms: 10_000, priority: 2, delay_ms: 50, idempotency_key: 'k-1' })
    assert.deepEqual(many, { name: 'thumbnail', inputs: [1, null] })
  })

  test('a submission whose connection is lost after sending is indeterminate and is sent once', async () => {
    await start()
    master.handle = (_request, response) => response.socket?.destroy()
    await assert.rejects(db.jobs.submit('square', 3), (error) => error instanceof IndeterminateWriteError && error.reason === 'connection-lost' && !error.isRetryable)
    assert.equal(master.submissions().length, 1)
  })

  test('with an idempotency key the lost submission is sent again, with the same key, and answers the job', async () => {
    await start()
    master.handle = (request, response) => (master.submissions().length === 1 ? response.socket?.destroy() : created('j_2')(request, response))
    const handle = await db.jobs.submit('square', 3, { idempotencyKey: 'once' })
    assert.equal(handle.id, 'j_2')
    assert.deepEqual(master.submissions().map((s) => (JSON.parse(s.body) as { idempotency_key: string }).idempotency_key), ['once', 'once'])
  })

  test('a 503 means nothing was stored: the submission is sent again without a key', async () => {
    await start()
    master.handle = (request, response) => (master.submissions().length === 1 ? reply(response, 503, { error: 'busy', code: 'OVERLOADED' }) : created('j_3')(request, response))
    assert.equal((await db.jobs.submit('square', 3)).id, 'j_3')
    assert.equal(master.submissions().length, 2)
  })

  test('the master’s codes come through: JOB_NOT_FOUND, JOB_FINISHED', async () => {
    await start()
    master.handle = (request, response) =>
      request.method === 'GET' ? reply(response, 404, { error: 'no job j_x', code: 'JOB_NOT_FOUND' }) : reply(response, 409, { error: 'finished', code: 'JOB_FINISHED' })
    await assert.rejects(db.jobs.get('j_x'), (error) => isTandemClientError(error, 'JOB_NOT_FOUND') && error.status === 404 && !error.isRetryable)
    await assert.rejects(db.jobs.cancel('j_x'), (error) => isTandemClientError(error, 'JOB_FINISHED') && error.status === 409)
  })

  test('wait long-polls until the job finishes: completed resolves, failed throws JobFailedError with its errors', async () => {
    await start()
    let polls = 0
    master.handle = (request, response) => {
      if (request.path.startsWith('/jobs?')) return created(request.body.includes('"fail"') ? 'j_bad' : 'j_ok')(request, response)
      assert.match(request.path, /^\/jobs\/j_(ok|bad)\/wait\?timeout=\d+ms$/)
      if (++polls < 3) return reply(response, 202, jobJson('j_ok', 'running'))
      if (request.path.includes('j_bad')) return reply(response, 200, jobJson('j_bad', 'failed', [null], [{ index: 0, error: 'Error: no', attempts: 3 }]))
      reply(response, 200, jobJson('j_ok', 'completed', [49]))
    }
    assert.deepEqual(await db.jobs.map('square', [7]), [49])
    assert.equal(polls, 3)
    const error = await db.jobs.map('fail', [1]).catch((e: unknown) => e)
    assert.ok(error instanceof JobFailedError)
    assert.deepEqual(error.errors, [{ index: 0, error: 'Error: no', attempts: 3 }])
    assert.equal(error.job.options.backoff.delayMs, 1000)
  })

  test('wait gives up with TIMEOUT after its timeoutMs while the job runs on', async () => {
    await start()
    master.handle = (request, response) => reply(response, 202, jobJson('j_slow', 'running'))
    await assert.rejects(db.jobs.handle('j_slow').wait({ timeoutMs: 50 }), (error) => isTandemClientError(error, 'TIMEOUT') && /j_slow did not finish/.test(error.message))
  })
})
