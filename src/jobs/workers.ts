/**
 * The replicas that run jobs, as the master sees them: their handlers, their slots, the leases
 * they hold, and when they last acknowledged.
 */
import type { Lease } from './queue-model.ts'

export interface Worker {
  nodeId: string
  handlers: Set<string>
  concurrency: number
  /** Leases it holds, including assignments still being written. Invariant: size <= concurrency, except after a reconnect names more. */
  running: Set<Lease>
  isConnected: boolean
  /** When it last acknowledged: one silent for a lease period gets no new task (it may be paused). */
  lastAckAt: number
}

export class Workers {
  private readonly byId = new Map<string, Worker>()
  private readonly leaseMs: number
  private readonly appliedLsn: (nodeId: string) => number | undefined

  constructor(leaseMs: number, appliedLsn: (nodeId: string) => number | undefined) {
    this.leaseMs = leaseMs
    this.appliedLsn = appliedLsn
  }

  get(nodeId: string): Worker | undefined {
    return this.byId.get(nodeId)
  }

  register(nodeId: string, handlers: readonly string[], concurrency: number, now: number): Worker {
    let worker = this.byId.get(nodeId)
    if (worker === undefined) {
      worker = { nodeId, handlers: new Set(), concurrency: 0, running: new Set(), isConnected: true, lastAckAt: now }
      this.byId.set(nodeId, worker)
    }
    worker.handlers = new Set(handlers)
    worker.concurrency = Math.max(0, Math.min(1024, Math.floor(concurrency)))
    worker.isConnected = true
    worker.lastAckAt = now
    return worker
  }

  /** Every acknowledgement renews every lease the replica holds. */
  renew(nodeId: string, now: number): void {
    const worker = this.byId.get(nodeId)
    if (worker === undefined) return
    worker.lastAckAt = now
    for (const lease of worker.running) lease.renewedAt = now
  }

  disconnected(nodeId: string): void {
    const worker = this.byId.get(nodeId)
    if (worker !== undefined) worker.isConnected = false
  }

  /** Whether a connected replica has a handler named `name` (busy or not). */
  serves(name: string): boolean {
    for (const worker of this.byId.values()) if (worker.isConnected && worker.handlers.has(name)) return true
    return false
  }

  hasFreeSlot(now: number): boolean {
    for (const worker of this.byId.values()) if (this.isAvailable(worker, now)) return true
    return false
  }

  /**
   * The replica to run a task of handler `name` at `lsn`: one with the handler and a free slot
   * that acknowledged within the lease period, preferring one that has already applied the
   * job's LSN (it can start at once), then the least loaded. `except`: not this one (a backup
   * copy runs elsewhere).
   */
  choose(name: string, lsn: number, now: number, except?: string): Worker | undefined {
    let best: Worker | undefined
    let bestScore = Infinity
    for (const worker of this.byId.values()) {
      if (worker.nodeId === except || !worker.handlers.has(name) || !this.isAvailable(worker, now)) continue
      const isCaughtUp = (this.appliedLsn(worker.nodeId) ?? 0) >= lsn
      const score = (isCaughtUp ? 0 : 2) + worker.running.size / worker.concurrency
      if (score < bestScore) {
        best = worker
        bestScore = score
      }
    }
    return best
  }

  private isAvailable(worker: Worker, now: number): boolean {
    return worker.isConnected && worker.running.size < worker.concurrency && now - worker.lastAckAt < this.leaseMs
  }

  stats(): Record<string, unknown>[] {
    return [...this.byId.values()].map((w) => ({ id: w.nodeId, connected: w.isConnected, handlers: [...w.handlers], concurrency: w.concurrency, running: w.running.size }))
  }
}
