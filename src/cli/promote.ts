/** `tandem promote URL [--force]`: asks the replica at URL to become the master. */
import { refusalOf, type NodeAccess } from './node-access.ts'

export async function promote(access: NodeAccess, force: boolean): Promise<void> {
  const started = Date.now()
  const response = await access.fetch(`${access.url}/cluster/promote${force ? '?force' : ''}`, { method: 'POST', signal: AbortSignal.timeout(30_000) })
  const text = await response.text()
  let body: { epoch?: number; lsn?: number; url?: string; error?: string; code?: string } = {}
  try {
    body = JSON.parse(text) as typeof body
  } catch {
    // An answer that is not JSON is reported by its status below.
  }
  // The credentials, not the promotion, were refused: printed as every command prints them.
  if (response.status === 401 || response.status === 403) throw refusalOf(response.status, body, text)
  if (!response.ok) {
    process.stderr.write(`promotion refused (${body.code ?? response.status}): ${body.error ?? (text.trim() || 'no reason given')}\n`)
    process.exitCode = 1
    return
  }
  process.stdout.write(`${body.url} is the master of epoch ${body.epoch}, from LSN ${body.lsn} (${Date.now() - started} ms); the other replicas are told to follow it\n`)
}
