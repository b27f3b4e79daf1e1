/**
 * Where a read runs. A read thread keeps long reads off the event loop and lets reads use every
 * core, but the hop costs a message each way and a thread wake-up: on the 2-core machine of the
 * README a point read by primary key took ~20 µs of the main thread's time plus ~10 µs on its
 * read thread, against ~30 µs all on the main thread, and the extra hop halved the reads per
 * second a replica answered over HTTP. So a read whose SQL ran in at most `cheapMicros` the last
 * time runs on the main thread's own read connection; any other read (never seen, slow last time,
 * several statements) goes to the read threads, which measure it too. A read never seen (one
 * statement of a text not kept here) is tried on the main thread first within a short budget
 * (firstRunBudgetMs): applications inline values and send thousands of distinct texts, most of
 * them point reads, and sending each to a thread would cost them the hop every time. One that
 * runs past that budget is stopped and sent to the threads; the main thread's time lost to such
 * trials is bounded (trialLossMsPerSecond), past which unseen reads go to the threads at once, so
 * a stream of distinct slow queries cannot hold the event loop. Times are wall-clock, and a
 * thread preempted on a busy machine reads slow now and then: a cheap read goes to the threads
 * after two slow runs in a row, or at once after one run slower than 20 × the limit (a
 * preemption is not that long; a query whose parameters turned it into a scan is). So a cheap
 * SQL text that turns really slow blocks the event loop once, then runs on the threads.
 */
import { cachedSqlCharsMax, type SqlStatement } from '../storage/index.ts'
import { OverBudget } from './local-reads.ts'

/**
 * The longest a read known to be cheap may run on the main thread: past it, its statement is
 * stopped and the read goes to a read thread instead, so a cheap SQL text that turns slow (new
 * parameters, a grown table) holds the event loop this long at most, once.
 */
export const inlineBudgetMs = 10
/** How long a read never seen may run on the main thread before it is stopped and sent to a thread. */
export const firstRunBudgetMs = 1
/** The most main-thread time per second that trials stopped past their budget may cost. */
export const trialLossMsPerSecond = 50

export class ReadCosts {
  /** By SQL text: cheap or not, the slow runs in a row since it was last cheap, and its last run. */
  private readonly known = new Map<string, { isCheap: boolean; slowRuns: number; lastMicros: number }>()
  private readonly cheapMicros: number
  private readonly capacity: number
  /** Reads run on the main thread because they were cheap, or never seen and tried there. */
  inline = 0
  /** Reads tried on the main thread that ran past their budget there, and went to a thread. */
  trialsOverBudget = 0
  /** Main-thread ms lost to trials past their budget in the current second, and when it began. */
  private trialLossMs = 0
  private trialWindowStartMs = 0

  /** `cheapMicros` 0: every read goes to the read threads. */
  constructor(cheapMicros: number, capacity = 1024) {
    this.cheapMicros = cheapMicros
    this.capacity = capacity
  }

  /** Known to run in at most cheapMicros: one statement, measured before. */
  isCheap(statements: readonly SqlStatement[]): boolean {
    if (this.cheapMicros <= 0 || statements.length !== 1) return false
    return this.known.get(statements[0]!.sql)?.isCheap ?? false
  }

  /**
   * Never seen, and worth a trial on the main thread: one statement short enough to be kept, and
   * this second's trials past their budget have not yet cost trialLossMsPerSecond.
   */
  isWorthATrial(statements: readonly SqlStatement[], nowMs = performance.now()): boolean {
    if (this.cheapMicros <= 0 || statements.length !== 1 || statements[0]!.sql.length > cachedSqlCharsMax) return false
    if (this.known.has(statements[0]!.sql)) return false
    if (nowMs - this.trialWindowStartMs >= 1000) {
      this.trialWindowStartMs = nowMs
      this.trialLossMs = 0
    }
    return this.trialLossMs < trialLossMsPerSecond
  }

  /**
   * A read run here was stopped past its budget after `ms` of the main thread, spent for nothing:
   * it counts against this second's trials, and the read is known to take longer than any budget.
   */
  stoppedOverBudget(statements: readonly SqlStatement[], ms: number): void {
    this.trialsOverBudget++
    this.trialLossMs += ms
    this.record(statements, Number.POSITIVE_INFINITY)
  }

  /** One statement whose last run, if it was measured, took at most `micros`. */
  isShorterThan(statements: readonly SqlStatement[], micros: number): boolean {
    if (this.cheapMicros <= 0 || statements.length !== 1 || statements[0]!.sql.length > cachedSqlCharsMax) return false
    return (this.known.get(statements[0]!.sql)?.lastMicros ?? 0) <= micros
  }

  /** What one run of these statements took, wherever it ran. */
  record(statements: readonly SqlStatement[], micros: number): void {
    if (statements.length !== 1) return
    const sql = statements[0]!.sql
    // Kept by its text: a long text is not kept (as in the statement cache), and goes to the threads.
    if (sql.length > cachedSqlCharsMax) return
    let entry = this.known.get(sql)
    if (entry === undefined) {
      if (this.known.size >= this.capacity) this.known.delete(this.known.keys().next().value!)
      entry = { isCheap: false, slowRuns: 0, lastMicros: micros }
      this.known.set(sql, entry)
    }
    entry.lastMicros = micros
    if (micros <= this.cheapMicros) {
      entry.isCheap = true
      entry.slowRuns = 0
    } else if (entry.isCheap && (++entry.slowRuns >= 2 || micros > this.cheapMicros * 20)) {
      entry.isCheap = false
      entry.slowRuns = 0
    }
  }

  /**
   * How long a read may run on this event loop, or undefined when it goes to a read thread at
   * once. The cheap ones get inlineBudgetMs; one never seen gets a trial of firstRunBudgetMs;
   * and while every thread is busy (`threadsBusy`: a long read there would hold it up), one that
   * last ran within the inline budget gets it too.
   */
  budgetFor(statements: readonly SqlStatement[], threadsBusy: boolean): number | undefined {
    if (this.isCheap(statements)) return inlineBudgetMs
    if (this.isWorthATrial(statements)) return firstRunBudgetMs
    return threadsBusy && this.isShorterThan(statements, inlineBudgetMs * 1000) ? inlineBudgetMs : undefined
  }

  /**
   * Runs a read here within `budgetMs` (budgetFor), timed, to learn its cost. One stopped past
   * its budget throws OverBudget (its caller runs it on a thread) and counts against the trials.
   */
  runWithin<T>(statements: readonly SqlStatement[], budgetMs: number, run: (budgetMs: number) => T): T {
    const started = performance.now()
    try {
      return this.runInline(statements, () => run(budgetMs))
    } catch (error) {
      if (error instanceof OverBudget) this.stoppedOverBudget(statements, performance.now() - started)
      throw error
    }
  }

  /** Runs a cheap read here, and keeps what it took. */
  runInline<T>(statements: readonly SqlStatement[], read: () => T): T {
    this.inline++
    const started = performance.now()
    try {
      return read()
    } finally {
      this.record(statements, (performance.now() - started) * 1000)
    }
  }
}
