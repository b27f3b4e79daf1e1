/**
 * Where a read runs. A read thread keeps long reads off the event loop and lets reads use every
 * core, but the hop costs a message each way and a thread wake-up: on the 2-core machine of the
 * README a point read by primary key took ~20 µs of the main thread's time plus ~10 µs on its
 * read thread, against ~30 µs all on the main thread, and the extra hop halved the reads per
 * second a replica answered over HTTP. So a read whose SQL ran in at most `cheapMicros` the last
 * time runs on the main thread's own read connection; any other read (never seen, slow last time,
 * several statements) goes to the read threads, which measure it too. A cheap read that turns
 * slow (other parameters, a grown table) blocks the event loop once, then goes to the threads.
 */
import type { SqlStatement } from '../storage/index.ts'

export class ReadCosts {
  private readonly micros = new Map<string, number>()
  private readonly cheapMicros: number
  private readonly capacity: number
  /** Reads run on the main thread because they were cheap. */
  inline = 0

  /** `cheapMicros` 0: every read goes to the read threads. */
  constructor(cheapMicros: number, capacity = 1024) {
    this.cheapMicros = cheapMicros
    this.capacity = capacity
  }

  /** Known to run in at most cheapMicros: one statement, measured before. */
  isCheap(statements: readonly SqlStatement[]): boolean {
    if (this.cheapMicros <= 0 || statements.length !== 1) return false
    const micros = this.micros.get(statements[0]!.sql)
    return micros !== undefined && micros <= this.cheapMicros
  }

  /** What one run of these statements took, wherever it ran. */
  record(statements: readonly SqlStatement[], micros: number): void {
    if (statements.length !== 1) return
    const sql = statements[0]!.sql
    if (!this.micros.has(sql) && this.micros.size >= this.capacity) this.micros.delete(this.micros.keys().next().value!)
    this.micros.set(sql, micros)
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
