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
import type { SchemaGeneration, SqlStatement, StatementResult } from '../storage/index.ts'
import type { FormatOptions } from '../http-api/rqlite-format.ts'
import type { NodeConfig } from './config.ts'
import { LocalReads } from './local-reads.ts'
import { ReadCosts } from './read-costs.ts'
import { ReadPool } from './read-pool.ts'

export type NodeReadsConfig = Pick<NodeConfig, 'readThreads' | 'readQueueMax' | 'inlineReadMaxUs'>

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

  /**
   * Opens the file read-only: the role that creates it is started first. `schema`: the node's,
   * moved by whichever role writes.
   */
  constructor(dbPath: string, schema: SchemaGeneration, config: NodeReadsConfig, logger: Logger) {
    this.dbPath = dbPath
    this.schema = schema
    this.inlineReadMaxUs = config.inlineReadMaxUs
    this.local = new LocalReads(dbPath, schema)
    this.costs = new ReadCosts(config.inlineReadMaxUs)
    if (config.readThreads > 0) {
      this.pool = new ReadPool({
        dbPath,
        schema,
        threads: config.readThreads,
        queueMax: config.readQueueMax,
        logger,
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
    this.local = new LocalReads(this.dbPath, this.schema)
  }

  readsOrThrow(): LocalReads {
    if (this.local === undefined) throw new TandemError('NOT_READY', 'this replica is installing a snapshot; retry shortly')
    return this.local
  }

  async query(statements: readonly SqlStatement[], transaction: boolean): Promise<StatementResult[]> {
    return this.read(
      statements,
      (local) => local.query(statements, transaction),
      (pool) => pool.query(statements, transaction),
    )
  }

  /** query(), answered as the HTTP API's `results` JSON text, formatted where the read ran. */
  async queryJson(statements: readonly SqlStatement[], transaction: boolean, format: FormatOptions): Promise<string> {
    return this.read(
      statements,
      (local) => local.queryJson(statements, transaction, format),
      (pool) => pool.queryJson(statements, transaction, format),
    )
  }

  /** queryJson() now, on this thread, when it would run here anyway; else undefined (nothing ran). */
  queryJsonIfCheap(statements: readonly SqlStatement[], transaction: boolean, format: FormatOptions): string | undefined {
    const local = this.local
    if (local === undefined || !this.runsHere(statements)) return undefined
    return this.runHere(statements, () => local.queryJson(statements, transaction, format))
  }

  isWrite(statements: readonly SqlStatement[]): boolean {
    return this.readsOrThrow().isWrite(statements)
  }

  /** The `reads` part of /status. */
  stats(): Record<string, unknown> {
    return this.pool === undefined ? { threads: 0 } : { ...this.pool.stats(), inline: this.costs.inline, inline_max_us: this.inlineReadMaxUs }
  }

  async close(): Promise<void> {
    await this.pool?.close()
    this.local?.close()
  }

  /**
   * Where a read runs: on a read thread, unless it is known to be cheap (read-costs.ts) or there
   * is no pool; then on the main thread's connection.
   */
  private async read<T>(statements: readonly SqlStatement[], here: (local: LocalReads) => T, onThread: (pool: ReadPool) => Promise<T>): Promise<T> {
    const local = this.readsOrThrow()
    if (this.pool !== undefined && !this.runsHere(statements)) return onThread(this.pool)
    return this.runHere(statements, () => here(local))
  }

  /** With no read threads every read runs here; with them, the cheap ones. */
  private runsHere(statements: readonly SqlStatement[]): boolean {
    return this.pool === undefined || this.costs.isCheap(statements)
  }

  /** Runs a read here; a cheap one (there are read threads) is timed, to notice it turning slow. */
  private runHere<T>(statements: readonly SqlStatement[], run: () => T): T {
    return this.pool === undefined ? run() : this.costs.runInline(statements, run)
  }
}
