/**
 * A cluster under fault injection: the harness's real processes, plus the operator's moves
 * (kill, pause, restart, promote, follow), each recorded in the history, and the final state
 * of every node read after healing. Every wait is bounded.
 */
import { Cluster, waitFor } from '../harness/cluster.ts'
import { checksum, execute, rows } from '../harness/http.ts'
import { NodeProcess, type NodeChanges } from '../harness/node-process.ts'
import type { FinalState, NodeFinalState } from './fault-checker.ts'
import { History, type PromotionRecord } from './history.ts'
import { nodeStatus, type NodeStatus } from './master-view.ts'
import { schema } from './operations.ts'

export interface FaultClusterOptions {
  replicas: number
  masterArgs?: string[]
  replicaArgs?: string[]
  env?: Record<string, string>
}

export class FaultCluster {
  readonly cluster: Cluster
  readonly history = new History()
  /** Nodes started outside the harness's cluster (a data directory moved to a new address). */
  private readonly extra: NodeProcess[] = []
  /** Nodes whose data directory now belongs to another process: not part of the cluster any more. */
  private readonly retired = new Set<NodeProcess>()

  private constructor(cluster: Cluster) {
    this.cluster = cluster
  }

  static async start(options: FaultClusterOptions): Promise<FaultCluster> {
    const cluster = await Cluster.start(options)
    const faults = new FaultCluster(cluster)
    try {
      // With --sync-replicas the first write waits for a replica: wait until one is attached.
      await waitFor(async () => ((await execute(cluster.master.url, schema, 'transaction')).status === 200 ? true : undefined), 15_000, () => 'the schema to be created')
      await cluster.converged(15_000)
    } catch (error) {
      await cluster.stop()
      throw error
    }
    return faults
  }

  get nodes(): NodeProcess[] {
    return [...this.cluster.nodes, ...this.extra].filter((n) => !this.retired.has(n))
  }

  urls(): string[] {
    return this.nodes.map((n) => n.url)
  }

  node(url: string): NodeProcess {
    const node = this.nodes.find((n) => n.url === url)
    if (node === undefined) throw new Error(`no node at ${url}`)
    return node
  }

  /** The status of every node that answers (a paused or dead one does not). */
  async statuses(timeoutMs = 800): Promise<NodeStatus[]> {
    const all = await Promise.all(this.nodes.filter((n) => n.isRunning && !n.isPaused).map((n) => nodeStatus(n.url, timeoutMs)))
    return all.filter((s): s is NodeStatus => s !== undefined)
  }

  /** The master with the highest epoch among the nodes that answer. */
  async master(): Promise<NodeProcess> {
    const masters = (await this.statuses()).filter((s) => s.role === 'master').sort((a, b) => b.epoch - a.epoch)
    if (masters[0] === undefined) throw new Error(`no node says it is the master:\n${this.logs(5)}`)
    return this.node(masters[0].url)
  }

  async kill(node: NodeProcess): Promise<void> {
    this.history.fault('kill', node.url)
    await node.kill('SIGKILL')
  }

  pause(node: NodeProcess): void {
    this.history.fault('pause', node.url)
    node.pause()
  }

  resume(node: NodeProcess): void {
    this.history.fault('resume', node.url)
    node.resume()
  }

  /**
   * Starts a killed node's data directory again as a new process on a new port (the node came
   * back at another address): nobody who knew the old address can reach it.
   */
  async restartElsewhere(node: NodeProcess, changes: NodeChanges = {}): Promise<NodeProcess> {
    if (node.isRunning) throw new Error(`${node.url} is still running: kill it first`)
    const moved = await NodeProcess.start({ ...node.spec, ...changes, port: 0 })
    this.retired.add(node)
    this.extra.push(moved)
    this.history.fault('restart', moved.url, `${node.url}'s data directory, at a new address`)
    return moved
  }

  /** Restarts on the same port; the history notes what the node says it is once ready. */
  async restart(node: NodeProcess, changes: NodeChanges = {}): Promise<void> {
    await node.restart(changes)
    const asked = changes.role === undefined ? '' : `asked to start as ${changes.role}${changes.masterUrl === undefined ? '' : ` of ${changes.masterUrl}`}; `
    const status = await nodeStatus(node.url, 2000)
    const became = status === undefined ? 'no status' : `${status.role} at epoch ${status.epoch}${status.masterUrl === undefined ? '' : ` following ${status.masterUrl}`}`
    this.history.fault('restart', node.url, `${asked}came back as ${became}`)
  }

  /**
   * `POST /cluster/promote` on `node`; the answer's epoch and LSN go into the history. Throws
   * with the node's answer when it refuses (PROMOTION_REFUSED names a more up-to-date replica).
   */
  async promote(node: NodeProcess, force = false): Promise<PromotionRecord> {
    const invokeAt = performance.now()
    const response = await fetch(`${node.url}/cluster/promote${force ? '?force' : ''}`, { method: 'POST', signal: AbortSignal.timeout(20_000) })
    const completeAt = performance.now()
    const text = await response.text()
    if (response.status !== 200) throw new PromotionError(node.url, response.status, text)
    const body = JSON.parse(text) as { epoch?: unknown; lsn?: unknown; url?: unknown }
    if (typeof body.epoch !== 'number' || typeof body.lsn !== 'number') throw new Error(`the promotion of ${node.url} answered without epoch and lsn: ${text}`)
    const promotion = { node: node.url, epoch: body.epoch, lsn: body.lsn, invokeAt, completeAt }
    this.history.promoted(promotion)
    return promotion
  }

  /**
   * Promotes the most up-to-date replica that answers, without force: the node checks that
   * itself, and when it refuses in favour of another replica, that one is promoted. Under load
   * with the master still up, replicas overtake each other between two surveys: after
   * `attemptsMax` refusals in a row it gives up (a planned switchover would stop the master).
   */
  async promoteMostUpToDate(attemptsMax = 8): Promise<PromotionRecord> {
    let statuses: NodeStatus[] = []
    const replicas = await waitFor(
      async () => {
        statuses = await this.statuses(1500)
        const found = statuses.filter((s) => s.role === 'replica').sort((a, b) => b.epoch - a.epoch || b.lsn - a.lsn)
        return found.length > 0 ? found : undefined
      },
      10_000,
      () => `a replica to promote; the nodes say ${JSON.stringify(statuses)}`,
    )
    let candidate = replicas[0]!.url
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.promote(this.node(candidate))
      } catch (error) {
        if (!(error instanceof PromotionError) || error.status !== 409 || attempt >= attemptsMax) throw error
        const better = (JSON.parse(error.body) as { details?: { moreUpToDate?: { url?: string } } }).details?.moreUpToDate?.url
        this.history.fault('promote-refused', candidate, error.body)
        if (better === undefined) throw error
        candidate = better
      }
    }
  }

  /**
   * With a coordinator nobody promotes: waits until a node other than `previous` is master of a
   * later epoch than `previousEpoch`, holding the master key, with its epoch's start recorded,
   * and records that as a promotion, invoked at `since` (the fault) and completed when seen.
   */
  async takenOver(previous: NodeProcess, previousEpoch: number, since: number, timeoutMs = 20_000): Promise<PromotionRecord> {
    const seen = await waitFor(
      async () => {
        for (const node of this.nodes.filter((n) => n !== previous && n.isRunning && !n.isPaused)) {
          const body = (await fetch(`${node.url}/status`, { signal: AbortSignal.timeout(800) }).then((r) => r.json()).catch(() => undefined)) as
            | { role?: string; epoch?: number; master?: { epoch_start_lsn?: number | null }; coordinator?: { holds_master_key?: boolean } }
            | undefined
          const startLsn = body?.master?.epoch_start_lsn
          if (body?.role === 'master' && (body.epoch ?? 0) > previousEpoch && typeof startLsn === 'number' && body.coordinator?.holds_master_key === true) {
            return { node, epoch: body.epoch!, startLsn }
          }
        }
        return undefined
      },
      timeoutMs,
      () => `a node to take over from ${previous.url} by itself:\n${this.logs(6)}`,
    )
    const promotion = { node: seen.node.url, epoch: seen.epoch, lsn: seen.startLsn - 1, invokeAt: since, completeAt: History.now() }
    this.history.promoted(promotion)
    return promotion
  }

  /** `POST /cluster/follow`: point `node` at `masterUrl`. */
  async follow(node: NodeProcess, masterUrl: string): Promise<void> {
    this.history.fault('follow', node.url, masterUrl)
    const response = await fetch(`${node.url}/cluster/follow`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ master: masterUrl }),
      signal: AbortSignal.timeout(10_000),
    })
    if (response.status !== 200) throw new Error(`${node.url} refused to follow ${masterUrl}: HTTP ${response.status} ${await response.text()}`)
  }

  /** Waits until `node` says it is a replica streaming from `masterUrl`. */
  async following(node: NodeProcess, masterUrl: string, timeoutMs = 15_000): Promise<void> {
    let last: NodeStatus | undefined
    await waitFor(
      async () => {
        last = await nodeStatus(node.url)
        return last?.role === 'replica' && last.masterUrl === masterUrl && last.state === 'streaming' ? true : undefined
      },
      timeoutMs,
      () => `${node.url} to stream from ${masterUrl}; it says ${JSON.stringify(last)}`,
    )
  }

  /**
   * The state of every node once the cluster has healed: waits (bounded) until every node
   * holds the master's LSN, then reads each node's checksum, event values and registers. A
   * node that never catches up is still read, at whatever LSN it holds, for the checker to
   * report.
   */
  async finalState(timeoutMs = 20_000): Promise<FinalState> {
    const master = await this.master()
    const running = this.nodes.filter((n) => n.isRunning)
    await waitFor(
      async () => {
        const sums = await Promise.all(running.map((n) => checksum(n.url).catch(() => undefined)))
        const top = sums[running.indexOf(master)]
        return top !== undefined && sums.every((s) => s?.lsn === top.lsn) ? true : undefined
      },
      timeoutMs,
      () => 'every node to reach the master LSN',
    ).catch(() => undefined)
    const nodes: NodeFinalState[] = []
    const unreadable: FinalState['unreadable'] = []
    for (const node of this.nodes) {
      if (!node.isRunning) {
        unreadable.push({ node: node.url, error: 'the process is not running' })
        continue
      }
      try {
        const [status, sum, values, registers] = await Promise.all([
          nodeStatus(node.url, 5000),
          checksum(node.url),
          rows(node.url, 'SELECT value FROM fault_events ORDER BY value'),
          rows(node.url, 'SELECT key, value FROM fault_registers ORDER BY key'),
        ])
        nodes.push({
          node: node.url,
          role: status?.role ?? 'unknown',
          epoch: status?.epoch ?? 0,
          lsn: sum.lsn,
          checksum: sum.checksum,
          values: values.map((r) => String(r[0])),
          registers: Object.fromEntries(registers.map((r) => [String(r[0]), String(r[1])])),
        })
      } catch (error) {
        unreadable.push({ node: node.url, error: error instanceof Error ? error.message : String(error) })
      }
    }
    return { master: master.url, nodes, unreadable }
  }

  /** The last lines each node logged (JSON on stderr), for failure messages. */
  logs(lines = 15): string {
    return this.nodes.map((n) => `--- ${n.url} (${n.spec.role} at start)\n${n.log.slice(-lines).join('\n')}`).join('\n')
  }

  /** Kills every process (SIGKILL stops a paused one too) and removes the data. */
  async stop(): Promise<void> {
    await Promise.all(this.extra.map((n) => n.kill('SIGKILL')))
    await this.cluster.stop()
  }
}

export class PromotionError extends Error {
  readonly status: number
  readonly body: string

  constructor(url: string, status: number, body: string) {
    super(status === 404 ? `${url} has no POST /cluster/promote yet (HTTP 404): the server does not implement promotion` : `the promotion of ${url} was refused: HTTP ${status} ${body}`)
    this.name = 'PromotionError'
    this.status = status
    this.body = body
  }
}
