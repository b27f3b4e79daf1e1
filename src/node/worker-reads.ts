/**
 * The reads an HTTP worker (http-worker-main.ts) answers on its own read-only connection: those
 * whose guarantees it can check from the node's published state (shared-node-state.ts) alone,
 * and whose statements are cheap or never seen (read-costs.ts, as on the main thread). Every
 * other read is left to the node's main process, which answers it as it always did: undefined
 * here means "forward it", never an error.
 *
 * The checks only ever err towards forwarding: `min_lsn` and the answer's position (X-Tandem-Lsn,
 * X-Tandem-Epoch) are those of the snapshot the read ran on, read in its own read transaction;
 * the time since the master was last heard is what was published plus the time since, never
 * less than the truth, so a read `freshness` allows here is fresh enough. A read a worker cannot
 * prove so goes to the main process, which waits or refuses as before.
 */
import type { FormatOptions } from '../http-api/rqlite-format.ts'
import type { QueryParams } from '../http-api/query-params.ts'
import { readAnswer } from '../http-api/read-answer.ts'
import type { Answer } from '../http-api/answer.ts'
import type { SchemaGeneration, SqlStatement } from '../storage/index.ts'
import { LocalReads, OverBudget } from './local-reads.ts'
import { ReadCosts, inlineBudgetMs } from './read-costs.ts'
import type { SharedNodeState } from './shared-node-state.ts'

/**
 * The node's process publishes every 10 ms; past this long without a word from it, it is paused
 * or stuck, and its workers answer nothing for it.
 */
export const stateCurrentMs = 1000

export interface WorkerReadsConfig {
  queryTimeoutMs: number
  inlineReadMaxUs: number
}

export class WorkerReads {
  private readonly dbPath: string
  private readonly state: SharedNodeState
  private readonly schema: SchemaGeneration
  private readonly costs: ReadCosts
  private readonly queryTimeoutMs: number
  /** The connection, and the file generation it was opened on (shared-node-state.ts). */
  private local: LocalReads | undefined
  private generation = -1

  constructor(dbPath: string, state: SharedNodeState, config: WorkerReadsConfig) {
    this.dbPath = dbPath
    this.state = state
    this.schema = state.schemaGeneration()
    this.costs = new ReadCosts(config.inlineReadMaxUs)
    this.queryTimeoutMs = config.queryTimeoutMs
  }

  /** Reads answered here. */
  get served(): number {
    return this.costs.inline
  }

  /**
   * The answer to a read this worker may give, or undefined: the main process answers it.
   * Throws nothing a client would see: a refusal (SQL policy, a file being replaced) is the
   * main process's to give.
   */
  answer(statements: readonly SqlStatement[], params: QueryParams): (Answer & { epoch: number }) | undefined {
    // One statement: what the read costs know to be cheap, and what queryJsonAt runs.
    if (statements.length !== 1 || params.pretty || params.dbTimeoutMs !== undefined || params.freshnessStrict) return undefined
    if (!this.state.isCurrent(stateCurrentMs)) return undefined
    const role = this.state.role
    const level = params.level ?? (params.minLsn !== undefined || params.freshnessMs !== undefined ? 'none' : 'weak')
    if (!(level === 'none' || level === 'auto' || (level === 'weak' && role === 'master'))) return undefined
    if (role === 'replica' && params.freshnessMs !== undefined) {
      const since = this.state.sinceContactMs()
      if (since === undefined || since > params.freshnessMs) return undefined
    }
    // A min_lsn not yet published is not reached yet here, or only just: the node's process waits for it.
    if (!this.state.readable || (params.minLsn !== undefined && this.state.lsn < params.minLsn)) return undefined
    // Proved or not by the snapshot itself: the position it holds is read in the same read
    // transaction as the statement (LocalReads.queryJsonAt), not from the published LSN, which
    // a commit makes visible to a reader a moment before it is published.
    const started = params.timings ? performance.now() : 0
    const format: FormatOptions = { associative: params.associative, timings: params.timings, blobArray: params.blobArray }
    let read: { text: string; lsn: number; epoch: number | undefined } | undefined
    try {
      read = this.run(statements, format)
    } catch {
      return undefined
    }
    if (read === undefined || (params.minLsn !== undefined && read.lsn < params.minLsn)) return undefined
    const answer = readAnswer(read.text, read.lsn, params.timings ? (performance.now() - started) / 1000 : undefined)
    return { ...answer, epoch: Math.max(this.state.epoch, read.epoch ?? 0) }
  }

  close(): void {
    this.local?.close()
    this.local = undefined
  }

  /** Closes the connection when the main process is replacing the file (checked now and then, and before each read). */
  followFile(): LocalReads | undefined {
    const generation = this.state.fileGeneration()
    if ((generation & 1) === 1) {
      this.close()
      return undefined
    }
    if (this.local === undefined || generation !== this.generation) {
      this.close()
      this.local = new LocalReads(this.dbPath, this.schema, this.queryTimeoutMs, inlineBudgetMs)
      this.generation = generation
    }
    return this.local
  }

  private run(statements: readonly SqlStatement[], format: FormatOptions): { text: string; lsn: number; epoch: number | undefined } | undefined {
    // No read threads here to keep free: a read known to be short runs here too (the main
    // process would run it on a thread, after the hop there).
    const budgetMs = this.costs.budgetFor(statements, true)
    if (budgetMs === undefined) return undefined
    const local = this.followFile()
    if (local === undefined) return undefined
    try {
      return this.costs.runWithin(statements, budgetMs, (budget) => local.queryJsonAt(statements[0]!, format, budget))
    } catch (error) {
      if (error instanceof OverBudget) return undefined
      throw error
    }
  }
}
