/**
 * Writes through the library API, no HTTP: `callers` async loops in this process, each awaiting
 * `node.write()` of one one-row INSERT before sending the next, for `durationMs`. The same
 * closed loop as the HTTP measurement, minus the network, the parsing and the response.
 */
import type { TandemNode, WriteRequest } from '../src/index.ts'
import { insertOneSql, payload } from './workload.ts'

const request: WriteRequest = { statements: [{ sql: insertOneSql, params: [payload] }], transaction: false }

export async function libraryWritesPerSec(node: TandemNode, callers: number, durationMs: number): Promise<number> {
  let done = 0
  const started = performance.now()
  const deadline = started + durationMs
  const caller = async () => {
    while (performance.now() < deadline) {
      const outcome = await node.write(request)
      const result = outcome.results[0]
      if (result === undefined || result.kind === 'error') throw new Error(`a library write failed: ${JSON.stringify(outcome.results)}`)
      done++
    }
  }
  await Promise.all(Array.from({ length: callers }, caller))
  return done / ((performance.now() - started) / 1000)
}
