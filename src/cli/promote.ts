/** `tandem promote URL [--force]`: asks the replica at URL to become the master. */
export async function promote(url: string, force: boolean): Promise<void> {
  const started = Date.now()
  const response = await fetch(`${url}/cluster/promote${force ? '?force' : ''}`, { method: 'POST', signal: AbortSignal.timeout(30_000) })
  const body = (await response.json()) as { epoch?: number; lsn?: number; url?: string; error?: string; code?: string }
  if (!response.ok) {
    process.stderr.write(`promotion refused (${body.code ?? response.status}): ${body.error ?? 'no reason given'}\n`)
    process.exitCode = 1
    return
  }
  process.stdout.write(`${body.url} is the master of epoch ${body.epoch}, from LSN ${body.lsn} (${Date.now() - started} ms); the other replicas are told to follow it\n`)
}
