/**
 * Query parameters, validated once per request. Flags are on by their presence, whatever their
 * value (rqlite's rule: `?transaction=false` still means a transaction). Unlike rqlite, an
 * unknown `level` is refused with 400 instead of silently meaning `weak`: a typo in a
 * consistency level should not quietly change the guarantee.
 */
import { goDurationMs } from '../shared/duration.ts'
import { TandemError } from '../shared/errors.ts'

export type Level = 'none' | 'weak' | 'strong' | 'linearizable' | 'auto'
const levels = new Set<Level>(['none', 'weak', 'strong', 'linearizable', 'auto'])

export interface QueryParams {
  transaction: boolean
  timings: boolean
  associative: boolean
  pretty: boolean
  redirect: boolean
  blobArray: boolean
  noleader: boolean
  freshnessStrict: boolean
  /** /db/backup: gzip the file. */
  compress: boolean
  /** Undefined when not given: the endpoint's default applies. */
  level: Level | undefined
  freshnessMs: number | undefined
  minLsn: number | undefined
  minLsnTimeoutMs: number
  q: string | undefined
  ver: string | undefined
  /** How long a strong or linearizable read waits for replicas to confirm the master. */
  linearizableTimeoutMs: number
  /** Replicas that must confirm a write (overrides the master's --sync-replicas). */
  sync: number | undefined
  syncTimeoutMs: number | undefined
  /** /db/backup's format: `binary` (the default), `delete` or `sql`. */
  fmt: string | undefined
  /** rqlite's db_timeout: each statement's time limit, at most the node's --query-timeout. */
  dbTimeoutMs: number | undefined
  /** rqlite's queued write: answered at once with a sequence number, applied in order after. */
  queue: boolean
  /** With `queue`: answer once the write is applied (at most `timeout`, default 30 s). */
  wait: boolean
  timeoutMs: number | undefined
}

export const minLsnTimeoutDefaultMs = 5000

/** A parameter's value; the first one when it is repeated. */
function first(query: Query, key: string): string | undefined {
  const value = query[key]
  return Array.isArray(value) ? value[0] : value
}

type Query = Record<string, string | string[] | undefined>

export function parseQueryParams(query: Query): QueryParams {
  const levelText = first(query, 'level')
  let level: Level | undefined
  if (levelText !== undefined) {
    const lowered = levelText.toLowerCase() as Level
    if (!levels.has(lowered)) throw new TandemError('BAD_REQUEST', `level must be one of none, weak, strong, linearizable, auto; got '${levelText}'`)
    level = lowered
  }
  const freshnessMs = duration('freshness', first(query, 'freshness'))
  const freshnessStrict = query['freshness_strict'] !== undefined
  if (freshnessStrict && freshnessMs === undefined) throw new TandemError('BAD_REQUEST', 'freshness_strict requires freshness')
  const minLsnText = first(query, 'min_lsn')
  let minLsn: number | undefined
  if (minLsnText !== undefined) {
    if (!/^\d+$/.test(minLsnText)) throw new TandemError('BAD_REQUEST', `min_lsn must be a non-negative integer; got '${minLsnText}'`)
    minLsn = Number(minLsnText)
  }
  const q = first(query, 'q')
  if (q !== undefined && q.trim() === '') throw new TandemError('BAD_REQUEST', 'query parameter q is empty')
  return {
    transaction: query['transaction'] !== undefined,
    timings: query['timings'] !== undefined,
    associative: query['associative'] !== undefined,
    pretty: query['pretty'] !== undefined,
    redirect: query['redirect'] !== undefined,
    blobArray: query['blob_array'] !== undefined,
    noleader: query['noleader'] !== undefined,
    freshnessStrict,
    compress: query['compress'] !== undefined,
    level,
    freshnessMs,
    minLsn,
    minLsnTimeoutMs: waitDuration('min_lsn_timeout', first(query, 'min_lsn_timeout')) ?? minLsnTimeoutDefaultMs,
    q,
    ver: first(query, 'ver'),
    fmt: first(query, 'fmt'),
    sync: count('sync', first(query, 'sync')),
    linearizableTimeoutMs: waitDuration('linearizable_timeout', first(query, 'linearizable_timeout')) ?? 2000,
    syncTimeoutMs: waitDuration('sync_timeout', first(query, 'sync_timeout')),
    dbTimeoutMs: waitDuration('db_timeout', first(query, 'db_timeout')),
    queue: query['queue'] !== undefined,
    wait: query['wait'] !== undefined,
    timeoutMs: waitDuration('timeout', first(query, 'timeout')),
  }
}

function count(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  if (!/^\d{1,4}$/.test(text)) throw new TandemError('BAD_REQUEST', `${name} must be a non-negative integer; got '${text}'`)
  return Number(text)
}

/**
 * The longest a request may ask the node to wait for something. A bound, because every wait holds
 * a timer and a connection, and because Node's timers fire at once past 2^31 - 1 ms (~24.8 days).
 */
export const waitMsMax = 60 * 60 * 1000

/** duration() for how long a request waits: at most waitMsMax. */
export function waitDuration(name: string, text: string | undefined): number | undefined {
  const ms = duration(name, text)
  if (ms !== undefined && ms > waitMsMax) throw new TandemError('BAD_REQUEST', `${name} must be at most 1h; got '${text ?? ''}'`)
  return ms
}

/** A Go duration (`500ms`, `2s`, `1m30s`) in milliseconds. */
export function duration(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const ms = goDurationMs(text)
  if (ms === undefined) throw new TandemError('BAD_REQUEST', `${name} is not a valid duration: use a number with a unit, like 500ms, 2s or 1m30s; got '${text}'`)
  return ms
}
