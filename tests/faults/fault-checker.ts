/**
 * The fault checker: judges a finished history (history.ts) against the final state of every
 * node after healing. It answers what a user of a replicated database must be able to rely on:
 *
 * | rule                 | a violation is                                                                  |
 * |----------------------|---------------------------------------------------------------------------------|
 * | lost                 | a write acknowledged `ok` whose value is absent from the final master's rows     |
 * | failed-present       | a write that definitely `failed` whose value is on some node or was read         |
 * | unknown-value        | a value on some node, or read, that no operation of the history wrote            |
 * | read-your-writes     | a session's read that misses a write the session had acknowledged before it      |
 * | monotonic-reads      | a session's read older than one the session had completed before it             |
 * | read-beyond-position | a read showing a version beyond the position its node reported                   |
 * | split-brain-ack      | an `ok` write whose X-Tandem-Epoch is lower than the epoch of a promotion that   |
 * |                      | had completed before the write was invoked (its acknowledgement certainly came   |
 * |                      | from a deposed master after the promotion); without an epoch (tandem/client),    |
 * |                      | one acknowledged by another node than the last one promoted before it, that was  |
 * |                      | not promoted itself before the write completed                                   |
 * | divergence           | a node at the final master's LSN whose checksum differs from the master's        |
 * | unhealed             | a node that did not reach the final master's LSN, or could not be read           |
 *
 * Sessions: read-your-writes, monotonic reads and read-beyond-position are checked by the
 * register checker of the cluster tests (tests/cluster/history-checker.ts), reused as is. It
 * orders values by a number; here a value's version is its write's position (epoch, LSN),
 * encoded as epoch * 2^32 + LSN: after a promotion, every entry of the new epoch is newer than
 * anything of the old one, including entries the promotion lost. A write acknowledged without
 * an epoch (tandem/client does not expose it) takes the epoch its LSN has in the final
 * timeline, which the promotions define, when its value survived; otherwise it has no version
 * and reads of it are not ordered.
 *
 * Split-brain: a node's acknowledgement happens somewhere between invoke and complete, so only
 * a write invoked after the promotion had completed is certainly acknowledged after it. Writes
 * in flight across a promotion are judged by the other rules (a deposed master's acknowledged
 * write that was discarded is `lost`).
 */
import { checkHistory, type Operation } from '../cluster/history-checker.ts'
import type { HistoryData, OperationRecord, PromotionRecord } from './history.ts'

export interface NodeFinalState {
  node: string
  role: string
  epoch: number
  /** The LSN the node's checksum was taken at. */
  lsn: number
  checksum: string
  /** Every value the workload's event table holds on this node. */
  values: string[]
  /** The register table: key → value. */
  registers: Record<string, string>
}

export interface FinalState {
  /** The URL of the master after healing. */
  master: string
  nodes: NodeFinalState[]
  /** Nodes whose state could not be read (down, or refusing reads). */
  unreadable: { node: string; error: string }[]
}

export const rules = [
  'lost',
  'failed-present',
  'unknown-value',
  'read-your-writes',
  'monotonic-reads',
  'read-beyond-position',
  'split-brain-ack',
  'divergence',
  'unhealed',
] as const

export type Rule = (typeof rules)[number]

export interface Violation {
  rule: Rule
  message: string
}

export interface FaultReport {
  operations: number
  writes: number
  reads: number
  /** Writes acknowledged ok. */
  acknowledged: number
  failed: number
  indeterminate: number
  counts: Record<Rule, number>
  violations: Violation[]
  /** Distinct log entries (epoch/LSN) that held lost acknowledged writes. */
  lostEntries: number
  /** How long before the fault that lost them the oldest lost write was acknowledged. */
  lossWindowMs: number
  /** The longest time with no write acknowledged, over the workload's run. */
  unavailabilityMs: number
  /** When that longest gap began (the history's clock). */
  unavailableSince: number
}

/** An (epoch, LSN) position as one number that orders like the pair. */
export function versionOf(epoch: number, lsn: number): number {
  return epoch * 2 ** 32 + lsn
}

export function checkFaults(history: HistoryData, final: FinalState): FaultReport {
  const violations: Violation[] = []
  const flag = (rule: Rule, message: string) => violations.push({ rule, message })
  const writes = history.operations.filter((op) => op.op === 'write')
  const reads = history.operations.filter((op) => op.op === 'read')
  const acknowledged = writes.filter((op) => op.outcome === 'ok')
  const master = final.nodes.find((n) => n.node === final.master)
  if (master === undefined) throw new Error(`the final state has no rows of its master ${final.master}`)
  const onMaster = new Set(master.values)

  // lost
  const lost = acknowledged.filter((w) => !onMaster.has(w.value!))
  for (const w of lost) flag('lost', `${describe(w)} was acknowledged by ${w.node ?? '?'} (epoch ${w.epoch ?? '?'}, LSN ${w.lsn ?? '?'}) but is not on the final master ${final.master}`)

  // failed-present
  const seen = new Map<string, string>()
  for (const node of final.nodes) {
    for (const value of [...node.values, ...Object.values(node.registers)]) if (!seen.has(value)) seen.set(value, `on ${node.node}`)
  }
  for (const r of reads) if (r.outcome === 'ok' && r.value !== null && !seen.has(r.value)) seen.set(r.value, `read by ${r.process} from ${r.node ?? '?'}`)
  for (const w of writes) {
    if (w.outcome !== 'failed') continue
    const where = seen.get(w.value!)
    if (where !== undefined) flag('failed-present', `${describe(w)} failed (${w.error ?? 'no reason'}) but its value is ${where}`)
  }

  // unknown-value, in the final states (reads are judged by the session checker below)
  const written = new Set(writes.map((w) => w.value!))
  const unknown = new Map<string, string>()
  for (const node of final.nodes) {
    for (const value of [...node.values, ...Object.values(node.registers)]) if (!written.has(value) && !unknown.has(value)) unknown.set(value, node.node)
  }
  for (const [value, node] of unknown) flag('unknown-value', `${JSON.stringify(value)} is on ${node} but no operation wrote it`)

  // sessions: read-your-writes, monotonic reads, read-beyond-position, and values read that nobody wrote
  const epochOf = finalTimeline(history.promotions)
  const versionOfWrite = (w: OperationRecord): number | undefined => {
    if (w.outcome !== 'ok' || w.lsn === undefined) return undefined
    if (w.epoch !== undefined) return versionOf(w.epoch, w.lsn)
    return onMaster.has(w.value!) ? versionOf(epochOf(w.lsn), w.lsn) : undefined
  }
  const sessionOps: Operation[] = []
  for (const op of history.operations) {
    if (op.op === 'write') {
      sessionOps.push({ type: 'write', session: op.process, key: op.key, value: op.value!, invokedAt: op.invokeAt, completedAt: op.completeAt, lsn: versionOfWrite(op) })
    } else if (op.outcome === 'ok') {
      const position = op.epoch !== undefined && op.lsn !== undefined ? { lsn: versionOf(op.epoch, op.lsn) } : {}
      sessionOps.push({ type: 'read', session: op.process, key: op.key, value: op.value, invokedAt: op.invokeAt, completedAt: op.completeAt, ...position, ...(op.node === undefined ? {} : { node: op.node }) })
    }
  }
  for (const v of checkHistory(sessionOps).violations) {
    const rule: Rule = v.kind === 'unknown-value' ? 'unknown-value' : v.kind
    flag(rule, v.message.replace(/version (\d+)/g, (_, n: string) => `version ${describeVersion(Number(n))}`).replace(/LSN (\d{10,})/g, (_, n: string) => `position ${describeVersion(Number(n))}`))
  }

  // split-brain-ack
  const promotions = [...history.promotions].sort((a, b) => a.completeAt - b.completeAt)
  for (const w of acknowledged) {
    if (w.epoch !== undefined) {
      const newer = promotions.filter((p) => p.completeAt < w.invokeAt && p.epoch > w.epoch!).pop()
      if (newer !== undefined) {
        flag('split-brain-ack', `${describe(w)} was acknowledged by ${w.node ?? '?'} in epoch ${w.epoch}, invoked ${Math.round(w.invokeAt - newer.completeAt)} ms after ${newer.node} had been promoted to epoch ${newer.epoch}`)
      }
      continue
    }
    // No epoch on the acknowledgement (tandem/client, which retries across a failover): the
    // master is the node promoted last before the write, unless the acknowledging node was
    // itself promoted before the write completed.
    const last = promotions.filter((p) => p.completeAt < w.invokeAt).pop()
    const promotedSince = (node: string) => promotions.some((p) => p.node === node && p.completeAt >= last!.completeAt && p.invokeAt < w.completeAt)
    if (last !== undefined && w.node !== undefined && w.node !== last.node && !promotedSince(w.node)) {
      flag('split-brain-ack', `${describe(w)} was acknowledged by ${w.node}, invoked ${Math.round(w.invokeAt - last.completeAt)} ms after ${last.node} had been promoted to epoch ${last.epoch}`)
    }
  }

  // divergence and healing
  for (const node of final.nodes) {
    if (node === master) continue
    if (node.lsn !== master.lsn) flag('unhealed', `${node.node} (${node.role}) is at LSN ${node.lsn}, the master ${master.node} at ${master.lsn}`)
    else if (node.checksum !== master.checksum) flag('divergence', `${node.node} holds checksum ${node.checksum.slice(0, 12)} at LSN ${node.lsn}, the master ${master.checksum.slice(0, 12)}`)
  }
  for (const u of final.unreadable) flag('unhealed', `${u.node} could not be read: ${u.error}`)

  const counts = Object.fromEntries(rules.map((r) => [r, 0])) as Record<Rule, number>
  for (const v of violations) counts[v.rule]++
  return {
    operations: history.operations.length,
    writes: writes.length,
    reads: reads.length,
    acknowledged: acknowledged.length,
    failed: writes.filter((w) => w.outcome === 'failed').length,
    indeterminate: writes.filter((w) => w.outcome === 'indeterminate').length,
    counts,
    violations,
    lostEntries: new Set(lost.map((w) => `${w.epoch ?? '?'}/${w.lsn ?? w.value}`)).size,
    lossWindowMs: lossWindowMs(lost, history),
    ...unavailability(acknowledged, history),
  }
}

/**
 * The epoch each LSN has in the final history. Each promotion to epoch E at LSN L cuts the
 * timeline after L (what a deposed master wrote past L is not in it) and begins E at L + 1.
 */
export function finalTimeline(promotions: readonly PromotionRecord[]): (lsn: number) => number {
  const starts: { epoch: number; startLsn: number }[] = [{ epoch: 1, startLsn: 1 }]
  for (const p of [...promotions].sort((a, b) => a.epoch - b.epoch)) {
    while (starts.length > 1 && starts[starts.length - 1]!.startLsn > p.lsn) starts.pop()
    starts.push({ epoch: p.epoch, startLsn: p.lsn + 1 })
  }
  return (lsn) => {
    let epoch = 1
    for (const s of starts) if (s.startLsn <= lsn) epoch = s.epoch
    return epoch
  }
}

/**
 * From the oldest lost acknowledgement to the fault (kill or pause) of the node that
 * acknowledged it: how long an acknowledged write stayed exposed. Writes lost without such a
 * fault after them (a deposed master's) do not count.
 */
function lossWindowMs(lost: readonly OperationRecord[], history: HistoryData): number {
  let window = 0
  for (const w of lost) {
    const fault = history.faults.filter((f) => (f.what === 'kill' || f.what === 'pause') && f.node === w.node && f.at >= w.completeAt).sort((a, b) => a.at - b.at)[0]
    if (fault !== undefined) window = Math.max(window, fault.at - w.completeAt)
  }
  return Math.round(window)
}

function unavailability(acknowledged: readonly OperationRecord[], history: HistoryData): { unavailabilityMs: number; unavailableSince: number } {
  const times = [history.startedAt, ...acknowledged.map((w) => w.completeAt).sort((a, b) => a - b), history.stoppedAt]
  let gap = 0
  let since = history.startedAt
  for (let i = 1; i < times.length; i++) {
    if (times[i]! - times[i - 1]! > gap) {
      gap = times[i]! - times[i - 1]!
      since = times[i - 1]!
    }
  }
  return { unavailabilityMs: Math.round(gap), unavailableSince: since }
}

function describe(op: OperationRecord): string {
  return `${op.process}'s ${op.op} of ${JSON.stringify(op.value)} to ${op.key}`
}

function describeVersion(version: number): string {
  return `${Math.floor(version / 2 ** 32)}/${version % 2 ** 32}`
}
