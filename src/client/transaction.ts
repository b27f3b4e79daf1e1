/**
 * The statements of one transaction, collected by `db.tx(async (t) => { ... })` and sent as ONE
 * all-or-nothing request when the callback returns. Nothing is sent before then, so a statement
 * cannot read what an earlier one wrote: compute values before, or in SQL (RETURNING,
 * subqueries, last_insert_rowid()).
 */
import { TandemClientError } from './client-errors.ts'
import { statementOf, type Params, type Statement } from './statements.ts'

export class Transaction {
  private readonly collected: Statement[] = []
  private isSent = false

  /** Adds a statement; returns its index in the transaction's `results`. */
  execute(sql: string, params?: Params): number {
    if (this.isSent) {
      throw new TandemClientError('BAD_REQUEST', 'this transaction was already sent: call t.execute() before the tx() callback returns (is an await missing?)')
    }
    this.collected.push(statementOf(sql, params))
    return this.collected.length - 1
  }

  /** The number of statements so far. */
  get size(): number {
    return this.collected.length
  }

  /** Closes the transaction to further statements and returns them. */
  seal(): Statement[] {
    this.isSent = true
    return this.collected
  }
}
