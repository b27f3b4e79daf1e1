/**
 * Where the workload's raw HTTP clients send writes and reads: the master with the highest
 * epoch among the nodes that answer `/status`, and the replicas that follow it. A deposed
 * master that still believes it is the master loses to the promoted one by its epoch, which is
 * what an epoch-aware client does; clients pinned to one node (stale clients) skip this view.
 *
 * Shared by all the raw clients of a workload; refreshed in the background and on demand,
 * one refresh at a time, every request bounded.
 */
export interface NodeStatus {
  url: string
  role: string
  epoch: number
  lsn: number
  /** A replica's master, as it says. */
  masterUrl: string | undefined
  /** A replica's follower state (streaming, connecting, fenced...). */
  state: string | undefined
}

const statusTimeoutMs = 800

export async function nodeStatus(url: string, timeoutMs = statusTimeoutMs): Promise<NodeStatus | undefined> {
  try {
    const response = await fetch(`${url}/status`, { signal: AbortSignal.timeout(timeoutMs) })
    if (response.status !== 200) return undefined
    const body = (await response.json()) as { role?: string; epoch?: number; position?: { lsn?: number }; replication?: { master_url?: string; state?: string } }
    return {
      url,
      role: body.role ?? 'unknown',
      epoch: body.epoch ?? 0,
      lsn: body.position?.lsn ?? 0,
      masterUrl: body.replication?.master_url,
      state: body.replication?.state,
    }
  } catch {
    return undefined
  }
}

export class MasterView {
  master: string | undefined
  epoch = 0
  replicas: string[] = []
  private readonly nodes: () => readonly string[]
  private refreshing: Promise<void> | undefined
  private readonly timer: NodeJS.Timeout

  constructor(nodes: () => readonly string[], refreshMs = 500) {
    this.nodes = nodes
    this.timer = setInterval(() => void this.refresh(), refreshMs)
    this.timer.unref()
  }

  /** Learns the master again; concurrent callers share one round of /status requests. */
  refresh(): Promise<void> {
    this.refreshing ??= this.learn().finally(() => (this.refreshing = undefined))
    return this.refreshing
  }

  close(): void {
    clearInterval(this.timer)
  }

  private async learn(): Promise<void> {
    const statuses = (await Promise.all(this.nodes().map((url) => nodeStatus(url)))).filter((s): s is NodeStatus => s !== undefined)
    const masters = statuses.filter((s) => s.role === 'master').sort((a, b) => b.epoch - a.epoch || (a.url === this.master ? -1 : 1))
    const best = masters[0]
    if (best === undefined || best.epoch < this.epoch) return
    this.master = best.url
    this.epoch = best.epoch
    this.replicas = statuses.filter((s) => s.role === 'replica' && s.masterUrl === best.url).map((s) => s.url)
  }
}
