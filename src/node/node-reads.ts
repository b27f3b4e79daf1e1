/**
 * A node's read side: where a client read runs, and running it. A read runs on the main thread's
 * read-only connection (local-reads.ts) when there are no read threads or it is known to be cheap
 * (read-costs.ts), else on the read threads (read-pool.ts). It holds those connections across a
 * snapshot install, which replaces the database file under them: closed before, opened again
 * after, and reads answer NOT_READY in between. Apart from TandemNode because none of this depends
 * on the node's role: a master and a replica read alike.
 */
import { TandemError } from '../shared/errors.ts'
import type { Logger } from '../shared/logger.ts'
import type { ReadStops, SchemaGeneration, SqlStatement, StatementResult } from '../storage/index.ts'
import type { FormatOptions } from '../http-api/rqlite-format.ts'
import type { NodeConfig } from './config.ts'
import { LocalReads, OverBudget } from './local-reads.ts'
import { ReadCosts, inlineBudgetMs } from './read-costs.ts'
import { ReadPool } from './read-pool.ts'

export type NodeReadsConfig = Pick<NodeConfig, 'readThreads' | 'readQueueMax' | 'inlineReadMaxUs' | 'queryTimeoutMs'>

export class NodeReads {
  private readonly dbPath: string
  /** Reported in /status beside the count of reads run inline. */
  private readonly inlineReadMaxUs: number
  /**
   * The main thread's read-only connection: it classifies statements (isWrite) and takes
   * checksums, and runs client reads when there is no read pool (readThreads 0). Undefined while
   * a snapshot install replaces the file: reads then answer NOT_READY.
   */
  private local: LocalReads | undefined
  /** Client reads, on read threads (readThreads > 0). */
  private readonly pool: ReadPool | undefined
  private readonly costs: ReadCosts
  private readonly schema: SchemaGeneration
  private readonly queryTimeoutMs: number

  /**
   * Opens the file read-only: the role that creates it is started first. `schema`: the node's,
   * moved by whichever role writes.
   */
  constructor(dbPath: string, schema: SchemaGeneration, config: NodeReadsConfig, logger: Logger) {
    this.dbPath = dbPath
    this.schema = schema
    this.inlineReadMaxUs = config.inlineReadMaxUs
    this.queryTimeoutMs = config.queryTimeoutMs
    // With read threads, this connection's reads run within the inline budget (runHere).
    this.local = new LocalReads(dbPath, schema, config.queryTimeoutMs, config.readThreads > 0 ? inlineBudgetMs : undefined)
    this.costs = new ReadCosts(config.inlineReadMaxUs)
    if (config.readThreads > 0) {
      this.pool = new ReadPool({
        dbPath,
        schema,
        threads: config.readThreads,
        queueMax: config.readQueueMax,
        logger,
        queryTimeoutMs: config.queryTimeoutMs,
        onAnswered: (statements, micros) => this.costs.record(statements, micros),
      })
    }
  }

  /** False while a snapshot install replaces the file. */
  get isOpen(): boolean {
    return this.local !== undefined
  }

  /** Before a snapshot replaces the file: every connection to it is closed, the read threads' too. */
  closeConnections(): void {
    this.local?.close()
    this.local = undefined
    this.pool?.closeConnections()
  }

  /** After a snapshot replaced the file. */
  openConnections(): void {
    this.pool?.openConnections()
    this.local = new LocalReads(this.dbPath, this.schema, this.queryTimeoutMs, this.pool === undefined ? undefined : inlineBudgetMs)
  }

  readsOrThrow(): LocalReads {
    if (this.local === undefined) throw new TandemError('NOT_READY', 'this replica is installing a snapshot; retry shortly')
    return this.local
  }

  /** `stops`: each statement's time limit, and the signal of the read's client going away. */
  async query(statements: readonly SqlStatement[], transaction: boolean, stops: ReadStops = {}): Promise<StatementResult[]> {
    return this.read(
      statements,
      (local, budgetMs) => local.query(statements, transaction, stops.limitMs, budgetMs),
      (pool) => pool.query(statements, transaction, stops),
    )
  }

  /** query(), answered as the HTTP API's `results` JSON text, formatted where the read ran. */
  async queryJson(statements: readonly SqlStatement[], transaction: boolean, format: FormatOptions, stops: ReadStops = {}): Promise<string> {
    return this.read(
      statements,
      (local, budgetMs) => local.queryJson(statements, transaction, format, stops.limitMs, budgetMs),
      (pool) => pool.queryJson(statements, transaction, format, stops),
    )
  }

  /**
   * queryJson() now, on this thread, when it would run here anyway; else undefined (nothing ran,
   * or it ran past the inline budget and was stopped: the caller then reads on a thread).
   */
  queryJsonIfCheap(statements: readonly SqlStatement[], transaction: boolean, format: FormatOptions): string | undefined {
    const local = this.local
    if (local === undefined) return undefined
    if (this.pool === undefined) return local.queryJson(statements, transaction, format)
    const budgetMs = this.budgetHere(statements)
    if (budgetMs === undefined) return undefined
    try {
      return this.runHere(statements, budgetMs, (budget) => local.queryJson(statements, transaction, format, undefined, budget))
    } catch (error) {
      if (error instanceof OverBudget) return undefined
      throw error
    }
  }

  isWrite(statements: readonly SqlStatement[]): boolean {
    return this.readsOrThrow().isWrite(statements)
  }

  /** The `reads` part of /status. */
  stats(): Record<string, unknown> {
    return this.pool === undefined
      ? { threads: 0 }
      : { ...this.pool.stats(), inline: this.costs.inline, inline_max_us: this.inlineReadMaxUs, first_runs_over_budget: this.costs.trialsOverBudget }
  }

  /** The node is stopping: reads in flight on the read threads end now (SHUTTING_DOWN). */
  stopReads(): void {
    this.pool?.stopReads()
  }

  async close(): Promise<void> {
    await this.pool?.close()
    this.local?.close()
  }

  /**
   * Where a read runs: on a read thread, unless the main thread may try it (budgetHere); there,
   * one that runs past its budget is stopped and goes to a thread after all.
   */
  private async read<T>(statements: readonly SqlStatement[], here: (local: LocalReads, budgetMs: number | undefined) => T, onThread: (pool: ReadPool) => Promise<T>): Promise<T> {
    const local = this.readsOrThrow()
    if (this.pool === undefined) return here(local, undefined)
    const budgetMs = this.budgetHere(statements)
    if (budgetMs === undefined) return onThread(this.pool)
    try {
      return this.runHere(statements, budgetMs, (budget) => here(local, budget))
    } catch (error) {
      if (!(error instanceof OverBudget)) throw error
      return onThread(this.pool)
    }
  }

  /** How long a read may run on the main thread (ReadCosts.budgetFor), or undefined: on a read thread at once. */
  private budgetHere(statements: readonly SqlStatement[]): number | undefined {
    return this.pool === undefined ? undefined : this.costs.budgetFor(statements, this.pool.isBusy)
  }

  private runHere<T>(statements: readonly SqlStatement[], budgetMs: number, run: (budgetMs: number) => T): T {
    return this.costs.runWithin(statements, budgetMs, run)
  }
}
