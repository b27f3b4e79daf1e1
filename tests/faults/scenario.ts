/**
 * One seeded fault scenario, start to finish: start a cluster, run the workload, inject the
 * fault while it runs, stop the workload, heal, read every node's final state, check the
 * history, print the scenario's table row. Every process is killed in `finally`.
 *
 * The seed comes from TANDEM_FAULT_SEED (else a random one, printed); each scenario draws from
 * its own stream of it, so rerunning one test file with the same seed repeats its plan.
 */
import assert from 'node:assert/strict'
import { checkFaults, type FaultReport, type FinalState, type Rule } from './fault-checker.ts'
import { FaultCluster, type FaultClusterOptions } from './fault-cluster.ts'
import type { HistoryData } from './history.ts'
import { Random } from './seeded-random.ts'
import { printRow, saveRow, timeline, type ScenarioRow } from './scenario-report.ts'
import { Workload, type WorkloadOptions } from './workload.ts'

export const baseSeed = process.env['TANDEM_FAULT_SEED'] !== undefined ? Number(process.env['TANDEM_FAULT_SEED']) : Math.floor(Math.random() * 2 ** 31)

export interface ScenarioContext {
  faults: FaultCluster
  workload: Workload
  random: Random
  /** Sleeps; the workload keeps running. */
  sleep: (ms: number) => Promise<void>
}

export interface ScenarioOptions {
  name: string
  cluster: FaultClusterOptions
  workload: Omit<WorkloadOptions, 'history' | 'random' | 'nodes' | 'pinned'> & {
    /** Clients that only talk to one node: by default the first master, whatever happens to it. */
    pinned?: { clients: number; url?: (faults: FaultCluster) => string }
  }
  /** Before the workload starts (e.g. a replica with its own data directory). */
  prepare?: (faults: FaultCluster, random: Random) => Promise<void>
  /** Load before the fault. */
  warmupMs: number
  /** The fault, while the workload runs. */
  fault: (context: ScenarioContext) => Promise<void>
  /** Load after the fault. */
  afterMs: number
  /** After the workload stopped: bring every node back into the cluster. */
  heal?: (context: ScenarioContext) => Promise<void>
  /** Extra checks on the healed cluster before it is stopped (e.g. reading its files). */
  inspect?: (context: ScenarioContext, final: FinalState) => Promise<void>
  /** Called in finally, before the processes are killed (e.g. to unmount a disk). */
  cleanup?: (faults: FaultCluster) => Promise<void>
}

export interface ScenarioResult {
  report: FaultReport
  history: HistoryData
  row: ScenarioRow
  final: FinalState
  /** The cluster's recent logs, for failure messages. */
  logs: string
  seed: number
}

export async function runScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const started = performance.now()
  const random = new Random(baseSeed).fork(options.name)
  const faults = await FaultCluster.start(options.cluster)
  let workload: Workload | undefined
  try {
    await options.prepare?.(faults, random)
    const { pinned: pinnedOptions, ...workloadOptions } = options.workload
    const firstMaster = faults.cluster.master.url
    const pinnedUrl = pinnedOptions?.url ?? (() => firstMaster)
    const pinned = pinnedOptions === undefined ? {} : { pinned: { url: () => pinnedUrl(faults), clients: pinnedOptions.clients } }
    workload = new Workload({ ...workloadOptions, ...pinned, history: faults.history, random: random.fork('workload'), nodes: () => faults.urls() })
    const context: ScenarioContext = { faults, workload, random, sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) }
    await workload.start()
    await context.sleep(options.warmupMs)
    await options.fault(context)
    await context.sleep(options.afterMs)
    await workload.stop()
    workload = undefined
    await options.heal?.(context)
    const final = await faults.finalState()
    await options.inspect?.(context, final)
    const report = checkFaults(faults.history, final)
    const row = rowOf(options.name, report, performance.now() - started)
    printRow(row)
    saveRow(row)
    const verbose = Number(process.env['TANDEM_FAULTS_VERBOSE'] ?? 0)
    if (verbose >= 1) process.stdout.write(`${timeline(faults.history, report)}\n`)
    if (verbose >= 2) process.stdout.write(`${faults.logs(200)}\n`)
    return { report, history: faults.history, row, final, logs: faults.logs(12), seed: baseSeed }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    throw new Error(`scenario ${options.name} (seed ${baseSeed}; rerun with TANDEM_FAULT_SEED=${baseSeed}) failed: ${message}\n${faults.logs(12)}`, { cause: error })
  } finally {
    await workload?.stop().catch(() => undefined)
    await options.cleanup?.(faults).catch(() => undefined)
    await faults.stop()
  }
}

function rowOf(scenario: string, report: FaultReport, durationMs: number): ScenarioRow {
  const { counts } = report
  return {
    scenario,
    seed: baseSeed,
    operations: report.operations,
    acknowledged: report.acknowledged,
    lost: counts.lost,
    lostEntries: report.lostEntries,
    lossWindowMs: report.lossWindowMs,
    splitBrainAcks: counts['split-brain-ack'],
    divergence: counts.divergence,
    unhealed: counts.unhealed,
    unavailabilityMs: report.unavailabilityMs,
    otherViolations: Object.fromEntries(
      Object.entries(counts).filter(([rule, n]) => n > 0 && !['lost', 'split-brain-ack', 'divergence', 'unhealed'].includes(rule)),
    ),
    durationMs: Math.round(durationMs),
  }
}

/** Fails unless every listed rule has no violation; the message names the seed and shows examples. */
export function assertNone(result: ScenarioResult, rulesThatMustHold: readonly Rule[]): void {
  const broken = rulesThatMustHold.filter((rule) => result.report.counts[rule] > 0)
  if (broken.length === 0) return
  const examples = result.report.violations.filter((v) => broken.includes(v.rule)).slice(0, 12).map((v) => `  ${v.rule}: ${v.message}`)
  assert.fail(
    `${result.row.scenario}: ${broken.map((rule) => `${rule} ${result.report.counts[rule]}`).join(', ')} (seed ${result.seed}; rerun with TANDEM_FAULT_SEED=${result.seed})\n${examples.join('\n')}\ntimeline:\n${timeline(result.history, result.report)}\n${result.logs}`,
  )
}

/**
 * Clients carried on after the last promotion: each kind (raw HTTP clients following the
 * highest epoch, tandem/client sessions) had a write acknowledged that it invoked after it.
 */
export function assertContinued(result: ScenarioResult): void {
  const { history } = result
  const last = [...history.promotions].sort((a, b) => b.completeAt - a.completeAt)[0]
  assert.ok(last !== undefined, `${result.row.scenario}: no promotion was recorded`)
  for (const kind of ['h', 't']) {
    if (!history.operations.some((op) => op.process.startsWith(kind))) continue
    const after = history.operations.filter((op) => op.process.startsWith(kind) && op.op === 'write' && op.outcome === 'ok' && op.invokeAt > last.completeAt)
    assert.ok(after.length > 0, `${result.row.scenario}: no ${kind === 'h' ? 'raw HTTP' : 'tandem/client'} write was acknowledged after the promotion of ${last.node} (seed ${result.seed})\n${result.logs}`)
  }
}

/** Every rule: what a fault the system is built to survive must leave intact. */
export const allRules: readonly Rule[] = ['lost', 'failed-present', 'unknown-value', 'read-your-writes', 'monotonic-reads', 'read-beyond-position', 'split-brain-ack', 'divergence', 'unhealed']
