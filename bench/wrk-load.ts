/**
 * Closed-loop HTTP load with wrk (Debian's `wrk`, C and epoll), when it is installed: the same
 * work as http-load.ts's autocannon at a fraction of the load generator's CPU, which matters on
 * a 2-core machine where the generator shares the cores with the servers it measures. Used
 * where Tandem is compared with another server (vs-rqlite.ts), so that the figure says more of
 * the servers than of the generator. Without wrk, autocannon measures instead, and says so.
 */
import { execFile, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { closedLoop, type LoadRequest, type LoadResult } from './http-load.ts'

/** wrk's path, or undefined when it is not installed. */
export const wrkPath: string | undefined = (() => {
  try {
    return execFileSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' }).trim() || undefined
  } catch {
    return undefined
  }
})()

export const generatorName = wrkPath === undefined ? 'autocannon (wrk is not installed: apt-get install wrk)' : 'wrk 4 (2 threads)'

/** Every thread cycles through the paths of the file named by TANDEM_WRK_PATHS. */
const cycling = `
local requests = {}
local next = 0
init = function(args)
  local file = os.getenv("TANDEM_WRK_PATHS")
  if file ~= nil then
    for line in io.lines(file) do requests[#requests + 1] = wrk.format(nil, line) end
  end
end
request = function()
  if #requests == 0 then return wrk.request() end
  next = next % #requests + 1
  return requests[next]
end
`

/** One line wrkLoop reads: requests, µs, failures, p50 and p99 latency in µs. */
const summary = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("TANDEM-WRK %d %d %d %d %d\\n", summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(50), latency:percentile(99)))
end
`

/** The same contract as http-load.ts's closedLoop: throws when any request failed. */
export async function wrkLoop(url: string, options: { connections: number; durationSec: number } & LoadRequest): Promise<LoadResult> {
  if (wrkPath === undefined) return closedLoop(url, options)
  const dir = mkdtempSync(join(tmpdir(), 'tandem-wrk-'))
  try {
    const scriptFile = join(dir, 'load.lua')
    const env: Record<string, string> = { ...(process.env as Record<string, string>) }
    let lua: string
    if ('paths' in options) {
      lua = cycling + summary
      const pathsFile = join(dir, 'paths.txt')
      writeFileSync(pathsFile, `${options.paths.join('\n')}\n`)
      env['TANDEM_WRK_PATHS'] = pathsFile
    } else {
      lua = `wrk.method = "POST"\nwrk.body = ${JSON.stringify(options.body)}\nwrk.headers["Content-Type"] = "application/json"\n${summary}`
    }
    writeFileSync(scriptFile, lua)
    const threads = Math.min(2, options.connections)
    const args = ['-t', String(threads), '-c', String(options.connections), '-d', `${options.durationSec}s`, '--timeout', '10s', '-s', scriptFile, url]
    const output = await new Promise<string>((resolve, reject) =>
      execFile(wrkPath, args, { env, encoding: 'utf8', timeout: (options.durationSec + 30) * 1000 }, (error, stdout, stderr) => (error === null ? resolve(stdout) : reject(new Error(`wrk failed: ${error.message}\n${stderr}`)))),
    )
    const line = /TANDEM-WRK (\d+) (\d+) (\d+) (\d+) (\d+)/.exec(output)
    if (line === null) throw new Error(`wrk printed no summary:\n${output}`)
    const [requests, durationUs, failed, p50Us, p99Us] = line.slice(1).map(Number) as [number, number, number, number, number]
    if (failed > 0 || requests === 0) throw new Error(`load against ${url} had ${failed} failed requests (wrk: connect, read, write, non-2xx or timeout); a throughput with failures would be meaningless\n${output}`)
    const durationSec = durationUs / 1e6
    return { perSec: requests / durationSec, ok: requests, durationSec, latencyP50Ms: p50Us / 1000, latencyP99Ms: p99Us / 1000 }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
