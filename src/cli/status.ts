/** `tandem status URL`: the cluster's topology, positions and lag as a table. */
import { renderTable } from './table.ts'

interface Status {
  role: string
  position: { epoch: number; lsn: number }
  node: { id: string; url: string }
  replicas?: { id: string; url: string; applied_lsn: number; lag_entries: number; lag_ms: number }[]
  replication?: { state: string; master_url: string; applied_lsn: number; lag_entries: number; lag_ms: number; last_problem: string | null }
}

async function getStatus(url: string): Promise<Status> {
  const response = await fetch(`${url}/status`, { signal: AbortSignal.timeout(5000) })
  if (!response.ok) throw new Error(`${url}/status answered HTTP ${response.status}`)
  return (await response.json()) as Status
}

export async function printStatus(url: string): Promise<void> {
  let status = await getStatus(url)
  const masterUrl = status.role === 'replica' ? status.replication?.master_url : undefined
  if (masterUrl !== undefined) {
    try {
      status = await getStatus(masterUrl)
    } catch (error) {
      process.stdout.write(`the master at ${masterUrl} is not reachable: ${String(error)}\n`)
    }
  }
  const rows: unknown[][] = [[status.node.id, status.role, status.node.url, `${status.position.epoch}/${status.position.lsn}`, 0, 0, 'serving']]
  for (const replica of status.replicas ?? []) {
    let state = 'streaming'
    if (!/^https?:/.test(replica.url)) {
      rows.push([replica.id, 'embedded', replica.url, `${status.position.epoch}/${replica.applied_lsn}`, replica.lag_entries, replica.lag_ms, 'streaming'])
      continue
    }
    try {
      const own = await getStatus(replica.url)
      state = own.replication?.state ?? state
    } catch {
      state = 'unreachable'
    }
    rows.push([replica.id, 'replica', replica.url, `${status.position.epoch}/${replica.applied_lsn}`, replica.lag_entries, replica.lag_ms, state])
  }
  process.stdout.write(`${renderTable(['node', 'role', 'url', 'epoch/lsn', 'lag (entries)', 'lag (ms)', 'state'], rows)}\n`)
}
