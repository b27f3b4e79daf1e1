/**
 * One raw HTTP client of the workload: writes to the master (or the node it is pinned to),
 * reads from the master's replicas or the master with `min_lsn` = the highest LSN it has seen
 * (read-your-writes and monotonic reads, as tandem/client does), and records each operation
 * with the X-Tandem-Epoch and X-Tandem-Lsn of its answer.
 *
 * Outcomes follow the README's catalogue: 200 with every statement applied is ok; 202
 * SYNC_TIMEOUT, 502, any 5xx but 503, and a connection lost after sending are indeterminate;
 * 503 (nothing applied), 421 and 301 (not the master: writes carry `redirect`, so nothing is
 * forwarded), other 4xx, and a connection refused before sending are failed.
 */
import type { History, Outcome } from './history.ts'
import type { MasterView } from './master-view.ts'
import type { Random } from './seeded-random.ts'
import { readRegisterSql, writeStatements, type WorkloadProcess, type WorkloadSettings, runOperations } from './operations.ts'

export interface HttpSessionOptions {
  view: MasterView
  /** Talk to this node only (asked before every operation): never follow a redirect or look for another master. */
  pinned?: () => string
  history: History
  random: Random
  settings: WorkloadSettings
}

interface Answer {
  status: number
  headers: Headers
  body: { results?: { error?: string; values?: unknown[][] }[]; lsn?: number; code?: string; error?: string; master?: string } | undefined
}

export class HttpSession implements WorkloadProcess {
  readonly id: string
  private readonly options: HttpSessionOptions
  private seq = 0
  /** The highest LSN this session has seen: its reads wait for it. */
  private sessionLsn = 0

  constructor(id: string, options: HttpSessionOptions) {
    this.id = id
    this.options = options
  }

  run(stopping: AbortSignal): Promise<void> {
    return runOperations(this.options.random, this.options.settings, stopping, { read: (key) => this.read(key), write: (key) => this.write(key) })
  }

  private async write(key: string): Promise<void> {
    const { view, pinned, history, settings } = this.options
    const node = pinned?.() ?? view.master
    if (node === undefined) {
      await view.refresh()
      return
    }
    const seq = ++this.seq
    const value = `${this.id}:${seq}`
    let query = 'transaction&redirect'
    if (settings.sync !== undefined) query += `&sync=${settings.sync}&sync_timeout=${settings.syncTimeoutMs}ms`
    const invokeAt = performance.now()
    const answer = await send(`${node}/db/execute?${query}`, { method: 'POST', body: JSON.stringify(writeStatements(this.id, seq, key, settings.padBytes)) }, settings.opTimeoutMs)
    const completeAt = performance.now()
    const base = { process: this.id, op: 'write' as const, key, value, invokeAt, completeAt, node }
    if ('error' in answer) {
      history.record({ ...base, outcome: answer.sent ? 'indeterminate' : 'failed', error: answer.error })
      if (pinned === undefined) void view.refresh()
      return
    }
    const { status, headers, body } = answer
    const epoch = numberOf(headers.get('x-tandem-epoch'))
    const lsn = numberOf(body?.lsn ?? headers.get('x-tandem-lsn'))
    const stamp = { ...(epoch === undefined ? {} : { epoch }), ...(lsn === undefined ? {} : { lsn }) }
    const results = body?.results
    let outcome: Outcome
    // A 200 this client cannot read was still committed: it may be applied.
    if (status === 200) outcome = results === undefined ? 'indeterminate' : results.some((r) => r.error !== undefined) ? 'failed' : 'ok'
    else if (status === 202 || status === 502 || (status >= 500 && status !== 503)) outcome = 'indeterminate'
    else outcome = 'failed'
    const error = outcome === 'ok' ? undefined : `HTTP ${status} ${body?.code ?? body?.results?.find((r) => r.error !== undefined)?.error ?? ''}`.trim()
    history.record({ ...base, outcome, ...stamp, ...(error === undefined ? {} : { error }) })
    if (outcome !== 'failed' && lsn !== undefined) this.sessionLsn = Math.max(this.sessionLsn, lsn)
    if (pinned === undefined && (status === 301 || status === 421 || status === 503)) void view.refresh()
  }

  private async read(key: string): Promise<void> {
    const { view, pinned, history, random, settings } = this.options
    const candidates = pinned !== undefined ? [pinned()] : [...view.replicas, ...(view.master === undefined ? [] : [view.master])]
    if (candidates.length === 0) {
      await view.refresh()
      return
    }
    const node = random.pick(candidates)
    const wait = this.sessionLsn > 0 ? `&min_lsn=${this.sessionLsn}&min_lsn_timeout=1000ms` : ''
    const invokeAt = performance.now()
    const answer = await send(`${node}/db/query?level=none${wait}`, { method: 'POST', body: JSON.stringify([[readRegisterSql, key]]) }, settings.opTimeoutMs)
    const completeAt = performance.now()
    const base = { process: this.id, op: 'read' as const, key, invokeAt, completeAt, node }
    const first = 'error' in answer ? undefined : answer.body?.results?.[0]
    if ('error' in answer || answer.status !== 200 || first === undefined || first.error !== undefined) {
      const error = 'error' in answer ? answer.error : `HTTP ${answer.status} ${answer.body?.code ?? first?.error ?? ''}`.trim()
      history.record({ ...base, value: null, outcome: 'failed', error })
      return
    }
    const epoch = numberOf(answer.headers.get('x-tandem-epoch'))
    const lsn = numberOf(answer.headers.get('x-tandem-lsn'))
    const value = first.values?.[0]?.[0]
    history.record({ ...base, value: typeof value === 'string' ? value : null, outcome: 'ok', ...(epoch === undefined ? {} : { epoch }), ...(lsn === undefined ? {} : { lsn }) })
    if (lsn !== undefined) this.sessionLsn = Math.max(this.sessionLsn, lsn)
  }
}

/** One request with a deadline: an answer, or why there was none and whether it was sent. */
async function send(url: string, init: { method: string; body: string }, timeoutMs: number): Promise<Answer | { error: string; sent: boolean }> {
  try {
    const response = await fetch(url, { ...init, headers: { 'content-type': 'application/json' }, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) })
    const text = await response.text()
    let body: Answer['body']
    try {
      body = JSON.parse(text) as Answer['body']
    } catch {
      body = undefined
    }
    return { status: response.status, headers: response.headers, body }
  } catch (error) {
    const code = (error as { cause?: { code?: string } }).cause?.code
    // Refused: the node never saw the request. Anything else may have reached it.
    return { error: code ?? (error instanceof Error ? error.name : String(error)), sent: code !== 'ECONNREFUSED' }
  }
}

function numberOf(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value !== '' ? Number(value) : Number.NaN
  return Number.isSafeInteger(n) ? n : undefined
}
