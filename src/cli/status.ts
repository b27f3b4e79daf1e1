/** `tandem status URL`: the cluster's topology, positions and lag as a table. */
import { CommandError, type NodeAccess } from './node-access.ts'
import { renderTable } from './table.ts'

interface Status {
  role: string
  position: { epoch: number; lsn: number }
  node: { id: string; url: string }
  replicas?: { id: string; url: string; applied_lsn: number; lag_entries: number; lag_ms: number }[]
  replication?: { state: string; master_url: string; applied_lsn: number; lag_entries: number; lag_ms: number; last_problem: string | null }
}

/** A node's /status; a refusal (401, 403) or an error answer is a CommandError with the node's message. */
function getStatus(access: NodeAccess, url: string): Promise<Status> {
  return access.json('GET', `${url}/status`, { timeoutMs: 5000 }) as Promise<Status>
}

function isRefusal(error: unknown): boolean {
  return error instanceof CommandError && (error.code === 'UNAUTHORIZED' || error.code === 'FORBIDDEN')
}

export async function printStatus(access: NodeAccess): Promise<void> {
  let status = await getStatus(access, access.url)
  const masterUrl = status.role === 'replica' ? status.replication?.master_url : undefined
  if (masterUrl !== undefined) {
    try {
      status = await getStatus(access, masterUrl)
    } catch (error) {
      // The user may see this node and not the master: say so, and show what this node knows.
      process.stdout.write(`the master at ${masterUrl} ${isRefusal(error) ? 'refused' : 'is not reachable'}: ${error instanceof Error ? error.message : String(error)}\n`)
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
      const own = await getStatus(access, replica.url)
      state = own.replication?.state ?? state
    } catch (error) {
      state = isRefusal(error) ? 'refused' : 'unreachable'
    }
    rows.push([replica.id, 'replica', replica.url, `${status.position.epoch}/${replica.applied_lsn}`, replica.lag_entries, replica.lag_ms, state])
  }
  process.stdout.write(`${renderTable(['node', 'role', 'url', 'epoch/lsn', 'lag (entries)', 'lag (ms)', 'state'], rows)}\n`)
}
