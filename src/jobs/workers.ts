/**
 * The replicas that run jobs, as the master sees them: their handlers, their slots, the leases
 * they hold, and when they last acknowledged.
 *
 * A replica holds up to `concurrency + prefetch` leases: the ones beyond its slots wait in its
 * own queue, so a slot that frees starts the next task without a round trip to the master. New
 * tasks go first to replicas with an idle slot, so a prefetched task waits only when every
 * replica is busy; a straggler's backup copy goes only to an idle slot. How many of a job's
 * tasks wait beyond the slots is sized by how long they run: what the slots get through in
 * `prefetchHorizonMs` (by the job's mean run time so far), one round before any finished; so
 * short tasks batch deep, and long ones do not queue behind each other.
 */
import type { Lease } from './queue-model.ts'

/** A replica holds at most the tasks its slots start within this long (prefetchFor). */
export const prefetchHorizonMs = 100

export interface Worker {
  nodeId: string
  handlers: Set<string>
  concurrency: number
  /** Leases it may hold beyond `concurrency`, queued there. */
  prefetch: number
  /** Leases it holds, including assignments still being written. Invariant: size <= concurrency + prefetch, except after a reconnect names more. */
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

  /** `prefetch`: undefined from a replica that does not say (an older release): none. */
  register(nodeId: string, handlers: readonly string[], concurrency: number, prefetch: number | undefined, now: number): Worker {
    let worker = this.byId.get(nodeId)
    if (worker === undefined) {
      worker = { nodeId, handlers: new Set(), concurrency: 0, prefetch: 0, running: new Set(), isConnected: true, lastAckAt: now }
      this.byId.set(nodeId, worker)
    }
    worker.handlers = new Set(handlers)
    worker.concurrency = slotsOf(concurrency)
    worker.prefetch = slotsOf(prefetch ?? 0)
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

  /** Every lease the replicas hold, those being written included. */
  *leases(): Generator<Lease> {
    for (const worker of this.byId.values()) yield* worker.running
  }

  /** Whether a replica has a slot no lease holds (what a backup copy needs). */
  hasIdleSlot(now: number): boolean {
    for (const worker of this.byId.values()) if (this.isAvailable(worker, now, 0)) return true
    return false
  }

  /**
   * The replica to run a task of handler `name` at `lsn`: one with the handler and room for a lease
   * that acknowledged within the lease period, preferring one that has already applied the
   * job's LSN (it can start at once), then the least loaded; one with an idle slot before any
   * other, so that a task queues on a busy replica only when every replica is busy.
   * `backupOf`: a backup copy of a task this replica runs: elsewhere, on an idle slot only.
   * `meanRunMs`: how long the job's tasks run, when known (prefetchFor).
   */
  choose(name: string, lsn: number, now: number, backupOf?: string, meanRunMs?: number): Worker | undefined {
    let best: Worker | undefined
    let bestScore = Infinity
    for (const worker of this.byId.values()) {
      if (worker.nodeId === backupOf || !worker.handlers.has(name) || !this.isAvailable(worker, now, backupOf === undefined ? prefetchFor(worker, meanRunMs) : 0)) continue
      const isCaughtUp = (this.appliedLsn(worker.nodeId) ?? 0) >= lsn
      const isIdle = worker.running.size < worker.concurrency
      // An idle slot first (a queued task waits only when every replica is busy), then caught
      // up, then the least loaded (below 1 for any replica with room).
      const score = (isIdle ? 0 : 4) + (isCaughtUp ? 0 : 2) + worker.running.size / (worker.concurrency + worker.prefetch)
      if (score < bestScore) {
        best = worker
        bestScore = score
      }
    }
    return best
  }

  /** Connected, acknowledging, and holding fewer than its slots plus `beyond` leases. */
  private isAvailable(worker: Worker, now: number, beyond: number): boolean {
    return worker.isConnected && worker.running.size < worker.concurrency + beyond && now - worker.lastAckAt < this.leaseMs
  }

  stats(): Record<string, unknown>[] {
    return [...this.byId.values()].map((w) => ({ id: w.nodeId, connected: w.isConnected, handlers: [...w.handlers], concurrency: w.concurrency, prefetch: w.prefetch, running: w.running.size }))
  }
}

/**
 * How many tasks `worker` may hold beyond its slots, for tasks that run `meanRunMs` on average
 * (undefined: not known yet): at most its prefetch, and what its slots start within
 * prefetchHorizonMs — one round (its concurrency) while the run time is unknown.
 */
export function prefetchFor(worker: Pick<Worker, 'concurrency' | 'prefetch'>, meanRunMs: number | undefined): number {
  const rounds = meanRunMs === undefined ? 1 : prefetchHorizonMs / Math.max(meanRunMs, 0.01)
  return Math.min(worker.prefetch, Math.floor(worker.concurrency * rounds))
}

/** A count a replica sent: a whole number from 0 to 1024. */
function slotsOf(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? Math.max(0, Math.min(1024, Math.floor(value))) : 0
}
