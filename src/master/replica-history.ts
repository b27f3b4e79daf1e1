/**
 * Whether a replica that says hello can stream from where it is (the master's side of the
 * history check): its position and history marks against the master's log. A replica whose
 * newest entry has another history hash than the master's entry at that LSN, or that is ahead
 * of the master, has a history that left the master's: it gets a snapshot, and the point where
 * the two histories part, so it keeps its own entries past it aside.
 */
import { hashBytes, hashHex, type Position } from '../replication-log/log-entry.ts'
import type { LogStore } from '../replication-log/log-store.ts'
import type { HistoryMark } from '../protocol/messages.ts'

/**
 * Why a replica at `position` cannot stream from here, or undefined if it can. When its
 * history left the master's, `forkLsn` is the last entry they share: the replica's entries
 * after it were written by a deposed master and were never part of this history.
 */
export function whySnapshot(log: LogStore, lastLsn: number, position: Position, marks: readonly HistoryMark[]): { reason: string; forkLsn?: number } | undefined {
  if (position.lsn === 0) {
    const oldest = log.oldestLsn()
    return oldest === undefined || oldest === 1 ? undefined : { reason: `the master retains LSN ${oldest} onwards; the replica is empty` }
  }
  const own = position.lsn <= lastLsn ? log.get(position.lsn) : undefined
  const ownHash = own === undefined ? undefined : hashHex(own.hash)
  if (position.hash !== undefined && ownHash !== undefined && position.hash !== ownHash) {
    // The same LSN, and maybe the same epoch, but another history: a master that came back
    // without its newest entries and wrote new ones, or two nodes promoted to one epoch.
    const shared = log.newestShared(marks, position.lsn - 1) ?? Math.max(0, Math.min(...marks.map((m) => m.lsn), position.lsn) - 1)
    return { reason: `the replica's entry ${position.lsn} differs from the master's (their history hashes disagree): its history left the master's after LSN ${shared}`, forkLsn: shared }
  }
  if (position.lsn > lastLsn && marks.length > 0) {
    // Ahead of this master: keep what both logs share, as far as the replica's marks show.
    const shared = log.newestShared(marks, lastLsn)
    if (shared !== undefined) {
      return { reason: `the replica's history (epoch ${position.epoch}, LSN ${position.lsn}) left the master's after LSN ${shared}`, forkLsn: Math.min(shared, log.forkPoint(position)) }
    }
  }
  const forkLsn = log.forkPoint(position)
  if (forkLsn < position.lsn || position.lsn > lastLsn) {
    return { reason: `the replica's history (epoch ${position.epoch}, LSN ${position.lsn}) left the master's after LSN ${Math.min(forkLsn, lastLsn)}`, forkLsn: Math.min(forkLsn, lastLsn) }
  }
  const oldest = log.oldestLsn()
  if (oldest === undefined || position.lsn + 1 < oldest) {
    return { reason: `the master retains LSN ${oldest ?? lastLsn + 1} onwards; the replica needs ${position.lsn + 1}` }
  }
  const entry = log.get(position.lsn)
  if (entry !== undefined && entry.epoch !== position.epoch) {
    return { reason: `the replica's entry ${position.lsn} is from epoch ${position.epoch}, the master's from epoch ${entry.epoch}`, forkLsn: Math.max(0, forkLsn - 1) }
  }
  return undefined
}

/** The most marks a hello may carry: LogStore.marks() gives 17, plus ~log2 of the log's length. */
export const marksMax = 100
const hashPattern = new RegExp(`^[0-9a-f]{${hashBytes * 2}}$`)

/** Are a hello's history hash and marks well formed? */
export function isHistory(hash: unknown, marks: unknown): boolean {
  if (hash !== undefined && (typeof hash !== 'string' || !hashPattern.test(hash))) return false
  if (!Array.isArray(marks) || marks.length > marksMax) return false
  return marks.every((m: unknown) => {
    const mark = m as Partial<HistoryMark> | null
    return typeof mark === 'object' && mark !== null && Number.isSafeInteger(mark.lsn) && (mark.lsn ?? 0) > 0 && typeof mark.hash === 'string' && hashPattern.test(mark.hash)
  })
}
