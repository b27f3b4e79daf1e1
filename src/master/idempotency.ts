/**
 * Idempotency keys: a write sent with `Idempotency-Key` runs once. The key, a hash of the
 * request and its results are stored in `_tandem_idempotency` by the same transaction that
 * applies the request, so the record exists exactly when the write does: a crash cannot leave
 * one without the other, and the table replicates like any other, so a promoted replica still
 * knows the keys. A repeat within the window answers with the stored results and LSN; the same
 * key with a different request is refused. Expired keys are deleted through the pipeline.
 */
import { createHash } from 'node:crypto'
import { TandemError } from '../shared/errors.ts'
import type { Connection, Statement, StatementResult } from '../storage/index.ts'
import type { WriteRequest } from './write-pipeline.ts'

export interface StoredOutcome {
  lsn: number
  results: StatementResult[]
}

export const idempotencyKeyLengthMax = 200

export function validateIdempotencyKey(key: string): void {
  if (key.length === 0 || key.length > idempotencyKeyLengthMax || !/^[\x21-\x7e]+$/.test(key)) {
    throw new TandemError('BAD_REQUEST', `Idempotency-Key must be 1 to ${idempotencyKeyLengthMax} printable ASCII characters without spaces`)
  }
}

/** A stable hash of what a request asks for, to tell a retry from a different request. */
export function requestHash(request: WriteRequest): string {
  return createHash('sha256').update(encode({ statements: request.statements, transaction: request.transaction })).digest('hex')
}

export class IdempotencyStore {
  private readonly find: Statement
  private readonly insert: Statement

  constructor(connection: Connection) {
    this.find = connection.prepare('SELECT hash, lsn, results FROM _tandem_idempotency WHERE key = ?')
    this.insert = connection.prepare('INSERT INTO _tandem_idempotency(key, hash, lsn, results, at) VALUES (?, ?, ?, ?, ?)')
  }

  /** Call inside the writer's transaction, under the policy's `internally`. */
  lookup(key: string, hash: string): StoredOutcome | undefined {
    const row = this.find.get(key) as { hash: string; lsn: number; results: string } | undefined
    if (row === undefined) return undefined
    if (row.hash !== hash) {
      throw new TandemError('IDEMPOTENCY_KEY_REUSED', `Idempotency-Key ${key} was used for a different request; use a new key for a new request`)
    }
    return { lsn: row.lsn, results: decode(row.results) as StatementResult[] }
  }

  record(key: string, hash: string, outcome: StoredOutcome, at: number): void {
    this.insert.run(key, hash, outcome.lsn, encode(outcome.results), at)
  }
}

export function expireIdempotencyKeys(connection: Connection, before: number): void {
  connection.prepare('DELETE FROM _tandem_idempotency WHERE at < ?').run(before)
}

/** JSON that keeps bigints and BLOBs. */
function encode(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return { $int: v.toString() }
    if (v instanceof Uint8Array) return { $blob: Buffer.from(v).toString('base64') }
    return v
  })
}

function decode(text: string): unknown {
  return JSON.parse(text, (_key, v: unknown) => {
    if (typeof v === 'object' && v !== null) {
      if ('$int' in v) return BigInt((v as { $int: string }).$int)
      if ('$blob' in v) return new Uint8Array(Buffer.from((v as { $blob: string }).$blob, 'base64'))
    }
    return v
  })
}
