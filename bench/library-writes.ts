/**
 * Writes through the library API, no HTTP: `callers` async loops in this process, each awaiting
 * `node.write()` of one transaction before sending the next, for `durationMs`. The same closed
 * loop as the HTTP measurement, minus the network, the parsing and the response. A transaction
 * is one one-row INSERT (`transaction: false`, as over HTTP), or `rowsPerTransaction` of them in
 * one request with `transaction: true`: the same statements raw SQLite runs per transaction in
 * rawBatchedRowsPerSec.
 */
import type { TandemNode, WriteRequest } from '../src/index.ts'
import { insertOneSql, payload } from './workload.ts'

function requestOf(rowsPerTransaction: number): WriteRequest {
  const statement = { sql: insertOneSql, params: [payload] }
  if (rowsPerTransaction === 1) return { statements: [statement], transaction: false }
  return { statements: Array.from({ length: rowsPerTransaction }, () => statement), transaction: true }
}

/** Transactions per second (rows per second ÷ `rowsPerTransaction`). */
export async function libraryWritesPerSec(node: TandemNode, callers: number, durationMs: number, rowsPerTransaction = 1): Promise<number> {
  const request = requestOf(rowsPerTransaction)
  let done = 0
  const started = performance.now()
  const deadline = started + durationMs
  const caller = async () => {
    while (performance.now() < deadline) {
      const outcome = await node.write(request)
      if (outcome.results.length !== rowsPerTransaction || outcome.results.some((result) => result.kind === 'error')) {
        throw new Error(`a library write failed: ${JSON.stringify(outcome.results.find((result) => result.kind === 'error') ?? outcome.results.length)}`)
      }
      done++
    }
  }
  await Promise.all(Array.from({ length: callers }, caller))
  return done / ((performance.now() - started) / 1000)
}
