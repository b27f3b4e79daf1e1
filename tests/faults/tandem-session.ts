/**
 * One tandem/client session of the workload: the product's own client, which finds the master
 * after a promotion by itself and reads replicas with session consistency. Its outcomes come
 * from the client's contract (src/client/client-errors.ts): a result is ok; SyncTimeoutError
 * (committed, not confirmed) and IndeterminateWriteError are indeterminate; a rolled-back
 * SqlError and every other TandemClientError mean nothing was applied. The client does not
 * expose X-Tandem-Epoch, so its operations carry none (the checker places its acknowledged
 * writes on the final timeline by LSN).
 */
import { IndeterminateWriteError, SqlError, SyncTimeoutError, TandemClientError, type TandemClient } from '../../src/client/index.ts'
import type { History, OperationRecord } from './history.ts'
import type { Random } from './seeded-random.ts'
import { readRegisterSql, writeStatements, type WorkloadProcess, type WorkloadSettings, runOperations } from './operations.ts'

export interface TandemSessionOptions {
  /** A client with a session of its own (withSession()). */
  client: TandemClient
  history: History
  random: Random
  settings: WorkloadSettings
}

export class TandemSession implements WorkloadProcess {
  readonly id: string
  private readonly options: TandemSessionOptions
  private seq = 0

  constructor(id: string, options: TandemSessionOptions) {
    this.id = id
    this.options = options
  }

  run(stopping: AbortSignal): Promise<void> {
    return runOperations(this.options.random, this.options.settings, stopping, { read: (key) => this.read(key), write: (key) => this.write(key) })
  }

  private async write(key: string): Promise<void> {
    const { client, history, settings } = this.options
    const seq = ++this.seq
    const statements = writeStatements(this.id, seq, key, settings.padBytes).map(([sql, ...params]) => ({ sql, params: params as (string | number)[] }))
    const sync = settings.sync === undefined ? {} : { sync: settings.sync, syncTimeoutMs: settings.syncTimeoutMs }
    const base = { process: this.id, op: 'write' as const, key, value: `${this.id}:${seq}`, invokeAt: performance.now() }
    let record: OperationRecord
    try {
      const result = await client.batch(statements, { transaction: true, timeoutMs: settings.opTimeoutMs, ...sync })
      record = { ...base, completeAt: performance.now(), outcome: 'ok', lsn: result.lsn, node: result.node }
    } catch (error) {
      const completeAt = performance.now()
      const where = error instanceof TandemClientError && error.node !== undefined ? { node: error.node } : {}
      if (error instanceof SyncTimeoutError) record = { ...base, completeAt, outcome: 'indeterminate', lsn: error.lsn, error: error.code, ...where }
      else if (error instanceof IndeterminateWriteError) record = { ...base, completeAt, outcome: 'indeterminate', error: `${error.code} (${error.reason})`, ...where }
      else if (error instanceof SqlError) record = { ...base, completeAt, outcome: error.rolledBack ? 'failed' : 'indeterminate', error: error.message, ...where }
      else if (error instanceof TandemClientError) record = { ...base, completeAt, outcome: 'failed', error: error.code, ...where }
      else record = { ...base, completeAt, outcome: 'indeterminate', error: String(error) }
    }
    history.record(record)
  }

  private async read(key: string): Promise<void> {
    const { client, history, settings } = this.options
    const base = { process: this.id, op: 'read' as const, key, invokeAt: performance.now() }
    try {
      const rows = await client.query<{ value: string }>(readRegisterSql, [key], { timeoutMs: settings.opTimeoutMs })
      history.record({ ...base, value: rows[0]?.value ?? null, completeAt: performance.now(), outcome: 'ok', lsn: rows.lsn, node: rows.node })
    } catch (error) {
      history.record({ ...base, value: null, completeAt: performance.now(), outcome: 'failed', error: error instanceof TandemClientError ? error.code : String(error) })
    }
  }
}
