/**
 * Closed-loop HTTP load with autocannon: `connections` keep-alive connections, each sending its
 * next request as soon as the previous answer arrives, for `durationSec`. The same function
 * drives Tandem and the node:http floor, so they are measured the same way.
 */
import autocannon from 'autocannon'

export interface LoadResult {
  /** Successful (2xx) requests per second. */
  perSec: number
  ok: number
  durationSec: number
  latencyP50Ms: number
  latencyP99Ms: number
}

/**
 * `body`: POST it to `url`. `paths`: GET each in turn instead (every connection cycles through
 * them), e.g. point reads of different ids.
 */
export type LoadRequest = { body: string } | { paths: readonly string[] }

/**
 * One GET whose path moves to the next of `paths` on every request, shared by all connections:
 * autocannon's `requests` with one entry per path stalls some connections when there are
 * thousands of paths (10,000 distinct point reads timed out after 10 s on every node tried).
 */
function cyclingGet(paths: readonly string[], headers: Record<string, string>) {
  let next = 0
  return {
    method: 'GET' as const,
    headers,
    setupRequest: (request: Record<string, unknown>) => ({ ...request, path: paths[next++ % paths.length] }),
  }
}

/** `headers`: sent with every request (credentials, say). An https:// URL is measured over TLS. */
export async function closedLoop(url: string, options: { connections: number; durationSec: number; headers?: Record<string, string> } & LoadRequest): Promise<LoadResult> {
  const extra = options.headers ?? {}
  const request =
    'body' in options
      ? { method: 'POST' as const, body: options.body, headers: { 'content-type': 'application/json', ...extra } }
      : { method: 'GET' as const, headers: extra, requests: [cyclingGet(options.paths, extra)] }
  const result = await autocannon({
    url,
    ...request,
    connections: options.connections,
    duration: options.durationSec,
    timeout: 10,
  })
  // Only 200 counts: a 202 is Tandem's SYNC_TIMEOUT (committed, not confirmed).
  const not200 = Object.entries(result.statusCodeStats ?? {}).reduce((sum, [code, stat]) => sum + (code === '200' ? 0 : (stat).count), 0)
  const failed = not200 + result.errors + result.timeouts
  if (failed > 0 || result['2xx'] === 0) {
    throw new Error(
      `load against ${url} had ${result.non2xx} non-2xx answers, ${result.errors} errors, ${result.timeouts} timeouts ` +
        `(status counts ${JSON.stringify(result.statusCodeStats)}); a throughput with failures would be meaningless`,
    )
  }
  return {
    perSec: result['2xx'] / result.duration,
    ok: result['2xx'],
    durationSec: result.duration,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
  }
}
