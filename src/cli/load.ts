/**
 * `tandem load URL FILE`: sends a SQLite database file, or SQL text as sqlite3 .dump writes it,
 * to POST /db/load of the master (a replica's NOT_MASTER answer names it, and the file goes
 * there), printing a progress line on stderr while it uploads.
 */
import { createReadStream, statSync } from 'node:fs'
import { Transform } from 'node:stream'
import { CommandError, readJson, refusalOf, type NodeAccess } from './node-access.ts'

const loadTimeoutMs = 60 * 60_000

export async function load(access: NodeAccess, file: string): Promise<void> {
  let size: number
  try {
    size = statSync(file).size
  } catch (error) {
    throw new CommandError('BAD_REQUEST', `cannot read ${file}: ${(error as Error).message}`)
  }
  const started = Date.now()
  let target = access.url
  for (let hop = 0; ; hop++) {
    const response = await send(access, target, file, size)
    const { body, text } = await readJson(response)
    const masterUrl = (body as { details?: { masterUrl?: unknown } } | undefined)?.details?.masterUrl
    if (response.status === 421 && typeof masterUrl === 'string' && hop === 0) {
      process.stderr.write(`\n${target} is a replica: loading on the master at ${masterUrl}\n`)
      target = masterUrl
      continue
    }
    process.stderr.write('\n')
    if (!response.ok) throw refusalOf(response.status, body, text)
    const lsn = (body as { lsn?: number }).lsn
    process.stdout.write(`loaded ${file} (${megabytes(size)}) into ${target} at LSN ${lsn} in ${((Date.now() - started) / 1000).toFixed(1)} s; the replicas copy it\n`)
    return
  }
}

/** One upload, with a progress line rewritten in place. */
function send(access: NodeAccess, url: string, file: string, size: number) {
  let sent = 0
  let shownAt = 0
  const progress = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      sent += chunk.length
      const now = Date.now()
      if (now - shownAt >= 200 || sent === size) {
        shownAt = now
        process.stderr.write(`\rsending ${file}: ${megabytes(sent)} of ${megabytes(size)} (${size === 0 ? 100 : Math.floor((sent / size) * 100)}%)`)
      }
      done(null, chunk)
    },
  })
  return access.fetch(`${url}/db/load`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
    body: createReadStream(file).pipe(progress),
    duplex: 'half',
    signal: AbortSignal.timeout(loadTimeoutMs),
  })
}

function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}
