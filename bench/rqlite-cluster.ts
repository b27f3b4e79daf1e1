/**
 * A Raft cluster of real rqlited processes (tests/harness/rqlited.ts) for baselines: node 1
 * bootstraps a cluster of its own and leads it, the others join it together (the leader adds
 * them one at a time). Their directories live under the benchmark's root, so a failed run's
 * sweep finds them too.
 */
import { mkdirSync } from 'node:fs'
import { Rqlited } from '../tests/harness/rqlited.ts'
import type { Resources } from './resources.ts'

const pollMs = 25

export class RqliteCluster {
  readonly nodes: Rqlited[]
  private stopping: Promise<void> | undefined

  private constructor(nodes: Rqlited[]) {
    this.nodes = nodes
  }

  static async start(resources: Resources, name: string, size: number): Promise<RqliteCluster> {
    const parentDir = resources.path(name)
    mkdirSync(parentDir, { recursive: true })
    const cluster = new RqliteCluster([])
    resources.onClose(() => cluster.stop())
    const first = await Rqlited.start({ parentDir })
    cluster.nodes.push(first)
    const joining = Array.from({ length: size - 1 }, (_, i) =>
      Rqlited.start({ parentDir, nodeId: String(i + 2), join: first }).then((node) => {
        cluster.nodes.push(node)
        return node
      }),
    )
    await Promise.all(joining)
    cluster.nodes.sort((a, b) => Number(a.nodeId) - Number(b.nodeId))
    return cluster
  }

  /**
   * The node that leads now: the one every node's GET /status names, and whose own says it is
   * the leader. Node 1 leads at first, but a heavy load can cost it its lease (heartbeats late on
   * 2 busy cores) and an election moves it; a request a follower forwards is not the leader's own
   * (a follower's forwarded /db/backup of a large database fails: HTTP 500, `gzip: invalid header`).
   */
  async leader(timeoutMs = 30_000): Promise<Rqlited> {
    const deadline = performance.now() + timeoutMs
    let seen: string[] = []
    while (performance.now() < deadline) {
      const statuses = await Promise.all(this.nodes.map((node) => raftStatus(node.url)))
      seen = statuses.map((s, i) => `node ${this.nodes[i]!.nodeId}: ${s.state ?? '?'}, leader ${s.leaderId ?? '?'}`)
      const leaderId = statuses[0]?.leaderId
      const leader = this.nodes.find((n) => n.nodeId === leaderId)
      if (leader !== undefined && statuses.every((s) => s.leaderId === leaderId) && statuses[this.nodes.indexOf(leader)]?.state === 'Leader') return leader
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    throw new Error(`rqlited: the nodes did not agree on a leader in ${timeoutMs} ms: ${seen.join('; ')}`)
  }

  /**
   * Resolves once every node answers `sql` (one row of values) with `want` at level=none, i.e.
   * from its own SQLite file, polled every pollMs; an answer with an error (no such table yet)
   * counts as not yet.
   */
  async waitForAll(sql: string, want: unknown[], timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs
    const expected = JSON.stringify(want)
    let last: string[] = []
    while (performance.now() < deadline) {
      last = await Promise.all(this.nodes.map((node) => firstRow(node.url, sql)))
      if (last.every((row) => row === expected)) return
      await new Promise((resolve) => setTimeout(resolve, pollMs))
    }
    throw new Error(`rqlited: not every node answered ${sql} with ${expected} in ${timeoutMs} ms: ${last.join(' | ')}`)
  }

  /** Stops every node (SIGTERM, then SIGKILL) and removes its directory; safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= Promise.all(this.nodes.map((node) => node.stop())).then(() => undefined)
    return this.stopping
  }
}

/** The first row `sql` answers on the node at `url` (level=none) as JSON, or what went wrong. */
export async function firstRow(url: string, sql: string): Promise<string> {
  try {
    const response = await fetch(`${url}/db/query?level=none&q=${encodeURIComponent(sql)}`, { signal: AbortSignal.timeout(10_000) })
    const body = (await response.json()) as { results?: { values?: unknown[][]; error?: string }[] }
    const result = body.results?.[0]
    return result?.error ?? JSON.stringify(result?.values?.[0] ?? null)
  } catch (error) {
    return String(error)
  }
}

/** What the node at `url` says of Raft: its own state (Leader, Follower, Candidate) and the leader it knows. */
async function raftStatus(url: string): Promise<{ state?: string; leaderId?: string }> {
  try {
    const response = await fetch(`${url}/status`, { signal: AbortSignal.timeout(5_000) })
    const status = (await response.json()) as { store?: { raft?: { state?: string }; leader?: { node_id?: string } } }
    const state = status.store?.raft?.state
    const leaderId = status.store?.leader?.node_id
    return { ...(state === undefined ? {} : { state }), ...(leaderId === undefined || leaderId === '' ? {} : { leaderId }) }
  } catch {
    return {}
  }
}
