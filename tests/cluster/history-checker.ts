/**
 * A checker of session guarantees over a recorded history: read-your-writes and monotonic reads.
 *
 * The model: registers (keys). Every write puts a value no other write uses into one key and is
 * acknowledged with the LSN of its log entry; the master orders all writes, so a value's
 * *version* is the LSN of the write that put it (0 for the key's initial value). Operations
 * carry the times they were invoked and completed on one clock (the recording process's), and
 * the session that issued them.
 *
 * Within a session, for a read r of key k:
 * - read-your-writes: every write w of k by the session that completed before r was invoked
 *   must be visible: version(r.value) >= w.lsn.
 * - monotonic reads: every read r' of k by the session that completed before r was invoked:
 *   version(r.value) >= version(r'.value).
 * - the value must have been written by someone (unknown-value), and, when the read reports
 *   the LSN the serving node had applied, it cannot show a version beyond it
 *   (read-beyond-position).
 *
 * Writes whose outcome is unknown (failed or indeterminate) carry no LSN: a read that returns
 * their value has no version to compare, so such reads are skipped, not flagged.
 * Operations of one session may overlap; only real-time order ("completed before invoked")
 * creates an obligation. Cost: O(n log n) per session and key.
 */

export type RegisterValue = string | number

export interface WriteOp {
  type: 'write'
  session: string
  key: string
  value: RegisterValue
  invokedAt: number
  completedAt: number
  /** The LSN the write was acknowledged with; undefined when its outcome is unknown. */
  lsn: number | undefined
}

export interface ReadOp {
  type: 'read'
  session: string
  key: string
  /** The value read; null: the key's initial value (nothing written yet). */
  value: RegisterValue | null
  invokedAt: number
  completedAt: number
  /** The LSN the serving node reported having applied, when known. */
  lsn?: number
  /** Which node served it, for the report. */
  node?: string
}

export type Operation = WriteOp | ReadOp

export type ViolationKind = 'read-your-writes' | 'monotonic-reads' | 'unknown-value' | 'read-beyond-position'

export interface Violation {
  kind: ViolationKind
  read: ReadOp
  /** The operation whose effect the read failed to show, when there is one. */
  because?: Operation
  message: string
}

export interface CheckResult {
  violations: Violation[]
  counts: Record<ViolationKind, number>
  reads: number
  writes: number
}

export function checkHistory(history: readonly Operation[]): CheckResult {
  const violations: Violation[] = []
  const versionOf = new Map<string, Map<RegisterValue, WriteOp>>()
  for (const op of history) {
    if (op.type !== 'write') continue
    let values = versionOf.get(op.key)
    if (values === undefined) versionOf.set(op.key, (values = new Map()))
    if (values.has(op.value)) throw new Error(`the history writes ${JSON.stringify(op.value)} to ${op.key} twice: values must be unique per key`)
    values.set(op.value, op)
  }

  /** The read's version; undefined when it cannot be ordered (a value of unknown outcome). */
  const version = (read: ReadOp): number | undefined => {
    if (read.value === null) return 0
    const write = versionOf.get(read.key)?.get(read.value)
    if (write === undefined) {
      violations.push({ kind: 'unknown-value', read, message: `${describe(read)} returned a value nobody wrote` })
      return undefined
    }
    return write.lsn
  }

  const groups = new Map<string, Operation[]>()
  for (const op of history) {
    const id = `${op.session}\u0000${op.key}`
    const group = groups.get(id)
    if (group === undefined) groups.set(id, [op])
    else group.push(op)
  }

  for (const ops of groups.values()) {
    const reads = ops.filter((op): op is ReadOp => op.type === 'read').sort((a, b) => a.invokedAt - b.invokedAt)
    const byCompletion = [...ops].sort((a, b) => a.completedAt - b.completedAt)
    const versions = new Map<ReadOp, number | undefined>(reads.map((r) => [r, version(r)]))
    // The strongest obligation from operations completed so far, swept in invocation order.
    let newestWrite: WriteOp | undefined
    let newestRead: { op: ReadOp; version: number } | undefined
    let next = 0
    for (const read of reads) {
      while (next < byCompletion.length && byCompletion[next]!.completedAt < read.invokedAt) {
        const done = byCompletion[next++]!
        if (done.type === 'write') {
          if (done.lsn !== undefined && (newestWrite === undefined || done.lsn > newestWrite.lsn!)) newestWrite = done
        } else {
          const v = versions.get(done)
          if (v !== undefined && (newestRead === undefined || v > newestRead.version)) newestRead = { op: done, version: v }
        }
      }
      const v = versions.get(read)
      if (v === undefined) continue
      if (read.lsn !== undefined && v > read.lsn) {
        violations.push({ kind: 'read-beyond-position', read, message: `${describe(read)} shows version ${v} but its node reported LSN ${read.lsn}` })
      }
      if (newestWrite !== undefined && v < newestWrite.lsn!) {
        violations.push({
          kind: 'read-your-writes',
          read,
          because: newestWrite,
          message: `${describe(read)} shows version ${v}, older than the session's own write of ${JSON.stringify(newestWrite.value)} at LSN ${newestWrite.lsn}`,
        })
      }
      if (newestRead !== undefined && v < newestRead.version) {
        violations.push({
          kind: 'monotonic-reads',
          read,
          because: newestRead.op,
          message: `${describe(read)} shows version ${v}, older than version ${newestRead.version} the session had already read${newestRead.op.node === undefined ? '' : ` on ${newestRead.op.node}`}`,
        })
      }
    }
  }

  const counts: Record<ViolationKind, number> = { 'read-your-writes': 0, 'monotonic-reads': 0, 'unknown-value': 0, 'read-beyond-position': 0 }
  for (const v of violations) counts[v.kind]++
  return { violations, counts, reads: history.filter((op) => op.type === 'read').length, writes: history.filter((op) => op.type === 'write').length }
}

function describe(read: ReadOp): string {
  return `session ${read.session}'s read of ${read.key}${read.node === undefined ? '' : ` on ${read.node}`} (${JSON.stringify(read.value)})`
}
