/**
 * The few etcd v3 calls automatic failover needs, over etcd's gRPC gateway (JSON over HTTP,
 * keys and values base64, 64-bit numbers as decimal strings): leases (grant, keep alive,
 * revoke), a range read, and a transaction. Ours rather than the `etcd3` package (tested
 * upstream against etcd ≤ 3.3, its lease loss reported up to 2×TTL late): Tandem decides when its
 * lease ends on its own clock, so it needs each call's answer, not a watcher's events.
 *
 * Every call has a timeout and tries each endpoint in turn; an answer that is not the shape
 * etcd gives is an error, never a guess. Lease ids stay strings: they are 64-bit.
 */
import { TandemError, messageOf } from '../shared/errors.ts'

/** One key as etcd stores it. */
export interface EtcdKv {
  key: string
  value: string
  createRevision: number
  modRevision: number
  /** The lease the key is attached to, '0' for none. */
  lease: string
}

/** A condition of a transaction: the key's create or mod revision equals a number (0: absent). */
export interface EtcdCompare {
  key: string
  target: 'CREATE' | 'MOD'
  revision: number
}

export type EtcdOp =
  | { put: { key: string; value: string; lease?: string } }
  | { range: { key: string; prefix?: boolean; limit?: number } }
  | { delete: { key: string } }

export interface EtcdTxnAnswer {
  succeeded: boolean
  /** The ranges' keys, in the order of the range operations of the branch that ran. */
  ranges: EtcdKv[][]
}

/** The largest answer read from etcd: ranges are bounded by `limit`, so more is not etcd. */
const answerBytesMax = 4 * 1024 * 1024

export class EtcdClient {
  private readonly endpoints: readonly string[]
  private readonly timeoutMs: number
  /** The endpoint that answered last: tried first next time. */
  private preferred = 0

  constructor(endpoints: readonly string[], timeoutMs: number) {
    if (endpoints.length === 0) throw new TandemError('BAD_REQUEST', 'etcd needs at least one endpoint')
    this.endpoints = endpoints.map((e) => e.replace(/\/+$/, ''))
    this.timeoutMs = timeoutMs
  }

  async grantLease(ttlSeconds: number): Promise<{ id: string; ttlSeconds: number }> {
    const body = await this.call('/v3/lease/grant', { TTL: ttlSeconds })
    const id = decimal(body['ID'], 'lease id')
    return { id, ttlSeconds: Number(decimal(body['TTL'], 'lease TTL')) }
  }

  /** Renews a lease: its TTL in seconds, or 0 when etcd no longer has it (expired or revoked). */
  async keepAlive(id: string): Promise<number> {
    const body = await this.call('/v3/lease/keepalive', { ID: id })
    const result = body['result']
    if (typeof result !== 'object' || result === null) throw malformed('keepalive', body)
    const ttl = (result as Record<string, unknown>)['TTL']
    // etcd leaves a zero TTL out (and answers -1 in some versions) for a lease it no longer has.
    return ttl === undefined ? 0 : Math.max(0, Number(decimal(ttl, 'lease TTL')))
  }

  async revoke(id: string): Promise<void> {
    await this.call('/v3/lease/revoke', { ID: id })
  }

  async range(key: string, options: { prefix?: boolean; limit?: number } = {}): Promise<EtcdKv[]> {
    return kvsOf(await this.call('/v3/kv/range', rangeRequest({ key, ...options })))
  }

  async txn(compare: readonly EtcdCompare[], success: readonly EtcdOp[], failure: readonly EtcdOp[] = []): Promise<EtcdTxnAnswer> {
    const body = await this.call('/v3/kv/txn', {
      compare: compare.map((c) => ({ key: b64(c.key), target: c.target, result: 'EQUAL', [c.target === 'CREATE' ? 'create_revision' : 'mod_revision']: String(c.revision) })),
      success: success.map(opRequest),
      failure: failure.map(opRequest),
    })
    const responses = body['responses'] ?? []
    if (!Array.isArray(responses)) throw malformed('txn', body)
    const ranges: EtcdKv[][] = []
    for (const response of responses as unknown[]) {
      const range = (response as Record<string, unknown> | null)?.['response_range']
      if (range !== undefined) ranges.push(kvsOf(range))
    }
    return { succeeded: body['succeeded'] === true, ranges }
  }

  private async call(path: string, request: unknown): Promise<Record<string, unknown>> {
    let lastError = ''
    for (let i = 0; i < this.endpoints.length; i++) {
      const index = (this.preferred + i) % this.endpoints.length
      const endpoint = this.endpoints[index]!
      let response: Response
      try {
        response = await fetch(`${endpoint}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(request),
          signal: AbortSignal.timeout(this.timeoutMs),
        })
      } catch (error) {
        lastError = `${endpoint}: ${messageOf(error)}`
        continue
      }
      const text = await boundedText(response)
      if (!response.ok) {
        // etcd answered: another endpoint would answer the same (a bad request, a lost lease).
        throw new TandemError('NO_MASTER', `etcd at ${endpoint} refused ${path}: HTTP ${response.status} ${text.slice(0, 200)}`)
      }
      this.preferred = index
      try {
        const body = JSON.parse(text) as unknown
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('not an object')
        return body as Record<string, unknown>
      } catch {
        throw new TandemError('NO_MASTER', `etcd at ${endpoint} answered ${path} with something that is not etcd's JSON: ${text.slice(0, 200)}`)
      }
    }
    throw new TandemError('NO_MASTER', `etcd is not reachable (${lastError})`)
  }
}

async function boundedText(response: Response): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? 0)
  if (declared > answerBytesMax) {
    await response.body?.cancel()
    throw new TandemError('NO_MASTER', `etcd's answer is ${declared} bytes, over ${answerBytesMax}`)
  }
  const text = await response.text()
  if (text.length > answerBytesMax) throw new TandemError('NO_MASTER', `etcd's answer is over ${answerBytesMax} bytes`)
  return text
}

function rangeRequest(range: { key: string; prefix?: boolean; limit?: number }): Record<string, unknown> {
  return {
    key: b64(range.key),
    ...(range.prefix === true ? { range_end: b64(prefixEnd(range.key)) } : {}),
    ...(range.limit === undefined ? {} : { limit: String(range.limit) }),
  }
}

function opRequest(op: EtcdOp): Record<string, unknown> {
  if ('put' in op) return { request_put: { key: b64(op.put.key), value: b64(op.put.value), ...(op.put.lease === undefined ? {} : { lease: op.put.lease }) } }
  if ('range' in op) return { request_range: rangeRequest(op.range) }
  return { request_delete_range: { key: b64(op.delete.key) } }
}

function kvsOf(body: unknown): EtcdKv[] {
  const kvs = (body as Record<string, unknown> | null)?.['kvs'] ?? []
  if (!Array.isArray(kvs)) throw malformed('range', body)
  return (kvs as unknown[]).map((kv) => {
    const k = kv as Record<string, unknown> | null
    if (typeof k?.['key'] !== 'string') throw malformed('range', body)
    return {
      key: unb64(k['key']),
      value: typeof k['value'] === 'string' ? unb64(k['value']) : '',
      createRevision: Number(decimal(k['create_revision'] ?? '0', 'create revision')),
      modRevision: Number(decimal(k['mod_revision'] ?? '0', 'mod revision')),
      lease: decimal(k['lease'] ?? '0', 'lease id'),
    }
  })
}

/** The first key after every key that starts with `prefix` (etcd's range_end for a prefix); prefixes are ASCII (--coordinator-prefix). */
export function prefixEnd(prefix: string): string {
  if (!/^[\x20-\x7e]+$/.test(prefix)) throw new TandemError('BAD_REQUEST', `an etcd key prefix is printable ASCII: ${JSON.stringify(prefix)}`)
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)
}

function decimal(value: unknown, what: string): string {
  const text = typeof value === 'number' ? String(value) : value
  if (typeof text !== 'string' || !/^-?\d{1,20}$/.test(text)) throw new TandemError('NO_MASTER', `etcd gave a ${what} that is not a number: ${JSON.stringify(value)?.slice(0, 60)}`)
  return text
}

function malformed(what: string, body: unknown): TandemError {
  return new TandemError('NO_MASTER', `etcd's ${what} answer has an unexpected shape: ${JSON.stringify(body)?.slice(0, 200)}`)
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64')
}

function unb64(text: string): string {
  return Buffer.from(text, 'base64').toString('utf8')
}
