/**
 * Jobs that wait for others (`after: [id…]`), in the master's memory: what each waiting job
 * still waits for, and what it does when one of them ends otherwise than completed (its
 * `on_failure`: `fail` it, or `continue` as if it had completed). The durable truth is
 * `_tandem_job_deps` and the jobs' states; a new master rebuilds this from them.
 *
 * A waiting job ends exactly one way: released (every job it waits for ended, none of them
 * failing it), or failed (one it waits for ended failed or cancelled, under `fail`) — a failure
 * passes down a chain, since the failed dependent ends too. Never stuck: each job it waits for
 * ends (completes, fails or is cancelled) and is counted off here when it does.
 */
export type OnFailure = 'fail' | 'continue'

export class Dependencies {
  private readonly waiting = new Map<string, { blockedBy: Set<string>; onFailure: OnFailure }>()
  /** By the job waited for: the jobs waiting for it. */
  private readonly dependents = new Map<string, Set<string>>()

  /** `jobId` waits for each of `blockedBy` (unfinished jobs). */
  wait(jobId: string, blockedBy: Iterable<string>, onFailure: OnFailure): void {
    const entry = { blockedBy: new Set(blockedBy), onFailure }
    this.waiting.set(jobId, entry)
    for (const id of entry.blockedBy) {
      let set = this.dependents.get(id)
      if (set === undefined) this.dependents.set(id, (set = new Set()))
      set.add(jobId)
    }
  }

  isWaiting(jobId: string): boolean {
    return this.waiting.has(jobId)
  }

  /** Of the jobs waiting, how many. */
  get size(): number {
    return this.waiting.size
  }

  /**
   * `jobId` ended in `state`: the waiting jobs it leaves with nothing to wait for (release them),
   * and those it fails (fail them, with the error given). Both are forgotten here.
   */
  ended(jobId: string, state: 'completed' | 'failed' | 'cancelled'): { release: string[]; fail: { id: string; error: string }[] } {
    const release: string[] = []
    const fail: { id: string; error: string }[] = []
    const waiters = this.dependents.get(jobId)
    this.dependents.delete(jobId)
    for (const id of waiters ?? []) {
      const entry = this.waiting.get(id)
      if (entry === undefined) continue
      entry.blockedBy.delete(jobId)
      if (state !== 'completed' && entry.onFailure === 'fail') {
        this.forget(id)
        fail.push({ id, error: `job ${jobId}, which it runs after, ended ${state}` })
      } else if (entry.blockedBy.size === 0) {
        this.forget(id)
        release.push(id)
      }
    }
    return { release, fail }
  }

  /** The job no longer waits (released, failed, cancelled). */
  forget(jobId: string): void {
    const entry = this.waiting.get(jobId)
    if (entry === undefined) return
    this.waiting.delete(jobId)
    for (const id of entry.blockedBy) {
      const set = this.dependents.get(id)
      set?.delete(jobId)
      if (set?.size === 0) this.dependents.delete(id)
    }
  }
}
