/**
 * A write's options from its query string, and its HTTP answer from its outcome: shared by the
 * /db/execute route and fast-path.ts.
 */
import type { WriteOutcome } from '../master/write-pipeline.ts'
import type { SyncOutcome, WriteOptions } from '../master/write-options.ts'
import { codes } from '../shared/errors.ts'
import type { Answer } from './answer.ts'
import { stringifyJson } from './json.ts'
import type { QueryParams } from './query-params.ts'
import { formatResult } from './rqlite-format.ts'

export function writeOptions(params: QueryParams, senderEpoch: number | undefined): WriteOptions {
  const options: WriteOptions = {}
  if (params.sync !== undefined) options.sync = params.sync
  if (params.syncTimeoutMs !== undefined) options.syncTimeoutMs = params.syncTimeoutMs
  if (senderEpoch !== undefined) options.senderEpoch = senderEpoch
  return options
}

/** `started`: performance.now() when the request began, read only with `timings`. */
export function executeAnswer(outcome: WriteOutcome & { sync?: SyncOutcome }, params: QueryParams, started: number): Answer {
  const body: Record<string, unknown> = { results: outcome.results.map((r) => formatResult(r, params)) }
  if (params.timings) body['time'] = (performance.now() - started) / 1000
  body['lsn'] = outcome.lsn
  const headers: Record<string, string> = { 'x-tandem-lsn': String(outcome.lsn) }
  if (outcome.replayed) headers['x-tandem-idempotent-replay'] = '1'
  let status = 200
  if (outcome.sync !== undefined) {
    body['sync'] = outcome.sync
    if (outcome.sync.confirmed < outcome.sync.required) {
      // Not an error status: the write is committed and must not be retried. The code says
      // exactly what is missing.
      body['code'] = 'SYNC_TIMEOUT'
      body['error'] = `committed on the master at LSN ${outcome.lsn}, but confirmed by ${outcome.sync.confirmed} of the ${outcome.sync.required} replicas required in time; do not retry the write`
      status = codes.SYNC_TIMEOUT.status
      headers['x-tandem-error'] = 'SYNC_TIMEOUT'
    }
  }
  headers['content-type'] = 'application/json; charset=utf-8'
  return { status, headers, body: stringifyJson(body, params.pretty) }
}
