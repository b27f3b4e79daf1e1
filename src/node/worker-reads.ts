/**
 * The reads an HTTP worker (http-worker-main.ts) answers on its own read-only connection: those
 * whose guarantees it can check from the node's published state (shared-node-state.ts) alone,
 * and whose statements are cheap or never seen (read-costs.ts, as on the main thread). Every
 * other read is left to the node's main process, which answers it as it always did: undefined
 * here means "forward it", never an error.
 *
 * The checks only ever err towards forwarding: the LSN a worker sees was published after its
 * COMMIT, so `min_lsn` met here is met; the time since the master was last heard is what was
 * published plus the time since, never less than the truth, so a read `freshness` allows here
 * is fresh enough. A read a worker cannot prove so goes to the main process, which waits or
 * refuses as before.
 */
import type { FormatOptions } from '../http-api/rqlite-format.ts'
import type { QueryParams } from '../http-api/query-params.ts'
import { readAnswer } from '../http-api/read-answer.ts'
import type { Answer } from '../http-api/answer.ts'
import type { SchemaGeneration, SqlStatement } from '../storage/index.ts'
import { LocalReads, OverBudget } from './local-reads.ts'
import { ReadCosts, inlineBudgetMs } from './read-costs.ts'
import type { SharedNodeState } from './shared-node-state.ts'

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
  answer(statements: readonly SqlStatement[], params: QueryParams): Answer | undefined {
    if (statements.length === 0 || params.pretty || params.dbTimeoutMs !== undefined || params.freshnessStrict) return undefined
    const role = this.state.role
    const level = params.level ?? (params.minLsn !== undefined || params.freshnessMs !== undefined ? 'none' : 'weak')
    if (!(level === 'none' || level === 'auto' || (level === 'weak' && role === 'master'))) return undefined
    if (role === 'replica' && params.freshnessMs !== undefined) {
      const since = this.state.sinceContactMs()
      if (since === undefined || since > params.freshnessMs) return undefined
    }
    // Read before the read transaction starts: the data it sees is at least this LSN's.
    const lsn = this.state.lsn
    if (params.minLsn !== undefined && lsn < params.minLsn) return undefined
    if (!this.state.readable) return undefined
    const started = params.timings ? performance.now() : 0
    const format: FormatOptions = { associative: params.associative, timings: params.timings, blobArray: params.blobArray }
    let results: string | undefined
    try {
      results = this.run(statements, params.transaction, format)
    } catch {
      return undefined
    }
    return results === undefined ? undefined : readAnswer(results, lsn, params.timings ? (performance.now() - started) / 1000 : undefined)
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

  private run(statements: readonly SqlStatement[], transaction: boolean, format: FormatOptions): string | undefined {
    // No read threads here to keep free: a read known to be short runs here too (the main
    // process would run it on a thread, after the hop there).
    const budgetMs = this.costs.budgetFor(statements, true)
    if (budgetMs === undefined) return undefined
    const local = this.followFile()
    if (local === undefined) return undefined
    try {
      return this.costs.runWithin(statements, budgetMs, (budget) => local.queryJson(statements, transaction, format, undefined, budget))
    } catch (error) {
      if (error instanceof OverBudget) return undefined
      throw error
    }
  }
}
