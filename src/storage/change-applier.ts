import { TandemError } from '../shared/errors.ts'
import type { Op } from './ops.ts'
import { quoteIdentifier, triggers, type TriggerDefinition } from './schema.ts'
import { changesetConflict, type Connection } from './sqlite.ts'

/**
 * Applies ops on a replica's apply connection (opened with foreign keys off, so cascades the
 * master already ran do not run again, and defensive off, so FTS5 shadow tables are writable).
 *
 * Triggers must not fire: their effects are already in the changesets, and would arrive twice.
 * The applier drops every trigger for the span of the caller's transaction and recreates it
 * before COMMIT, so readers never see the schema without them. (An authorizer that IGNOREs
 * trigger statements cannot stop an unconditional `DELETE FROM x` inside a trigger; this can.)
 *
 * Any conflict is divergence: the replica no longer holds what the master's changeset expects.
 * Nothing is overwritten; the caller rolls back and resyncs.
 */
export class ChangeApplier {
  private suppressed: TriggerDefinition[] | undefined
  /** The schema's triggers; read again after every DDL op. */
  private known: TriggerDefinition[] | undefined

  private readonly connection: Connection

  constructor(connection: Connection) {
    this.connection = connection
  }

  /** Call inside a transaction, before the first apply(). */
  suppressTriggers(): void {
    if (this.suppressed !== undefined) return
    this.known ??= triggers(this.connection)
    this.suppressed = this.known
    for (const trigger of this.suppressed) this.connection.exec(`DROP TRIGGER ${quoteIdentifier(trigger.name)}`)
  }

  /** Call inside the same transaction, before COMMIT. */
  restoreTriggers(): void {
    if (this.suppressed === undefined) return
    for (const trigger of this.suppressed) this.connection.exec(trigger.sql)
    this.suppressed = undefined
  }

  /** Forget suppressed triggers after the caller rolled the transaction back (it restored them). */
  reset(): void {
    this.suppressed = undefined
    this.known = undefined
  }

  apply(ops: readonly Op[], lsn: number): void {
    for (const op of ops) {
      switch (op.kind) {
        case 'ddl':
          // A DDL statement may drop or replace a trigger: run it against the real schema.
          this.restoreTriggers()
          this.connection.exec(op.sql)
          this.known = undefined
          this.suppressTriggers()
          break
        case 'changeset': {
          let conflict = 0
          const applied = this.connection.applyChangeset(op.bytes, {
            onConflict: (kind) => {
              conflict = kind
              return changesetConflict.ABORT
            },
          })
          if (!applied) {
            throw new TandemError('REPLICA_DIVERGED', `entry ${lsn} conflicts with this replica's data (conflict type ${conflict}): the replica no longer matches the master`, { lsn, conflict })
          }
          break
        }
        case 'sequence':
          this.replaceSequence(op.rows)
          break
        case 'load':
          throw new TandemError('REPLICA_DIVERGED', `entry ${lsn} replaced the master's whole database (a load): this replica copies the master's database instead of applying it`, { lsn, loaded: true })
      }
    }
  }

  private replaceSequence(rows: readonly [string, number][]): void {
    const exists = this.connection.prepare(`SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence'`).get() !== undefined
    if (!exists) return
    this.connection.exec('DELETE FROM sqlite_sequence')
    const insert = this.connection.prepare('INSERT INTO sqlite_sequence(name, seq) VALUES (?, ?)')
    for (const [name, seq] of rows) insert.run(name, seq)
  }
}
