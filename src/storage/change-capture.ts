import { assert } from '../shared/assert.ts'
import type { Op } from './ops.ts'
import type { Connection, Session, Statement } from './sqlite.ts'

/**
 * Records the row changes of one write transaction on the master as ops. One session spans the
 * whole group-committed transaction (a session costs tens of microseconds on its first change
 * to each table); it is flushed into an op only around DDL, so ops keep DDL and row changes in
 * the order they happened.
 *
 * Invariant: between begin() and finish() the connection is inside a transaction.
 */
export interface CaptureMark {
  ops: number
  session: number
}

export class ChangeCapture {
  private session: Session | undefined
  /** Counts sessions, so a mark knows whether the session it saw is still the current one. */
  private sessionNumber = 0
  private ops: Op[] = []
  private sequence: Map<string, number> | undefined
  private readonly sequenceReader: SequenceReader

  private readonly connection: Connection
  private readonly internally: <T>(fn: () => T) => T

  /** `internally` runs the session's own SQL past the connection's policy (see SqlPolicy). */
  constructor(connection: Connection, internally: <T>(fn: () => T) => T = (fn) => fn()) {
    this.connection = connection
    this.internally = internally
    this.sequenceReader = new SequenceReader(connection)
  }

  begin(): void {
    assert(this.session === undefined, 'capture already begun')
    this.ops = []
    this.sequence ??= this.internally(() => this.sequenceReader.read())
    this.openSession()
  }

  /**
   * Where the ops stand now. Take a mark at the start of a unit (request or statement) that may
   * be rolled back, after flush() if the unit holds DDL, so that every op past the mark belongs
   * to the unit alone.
   */
  mark(): CaptureMark {
    return { ops: this.ops.length, session: this.sessionNumber }
  }

  /**
   * Forgets what the unit since `mark` recorded, after the caller ran ROLLBACK TO for it.
   * If the session of the mark is still current, nothing was flushed inside the unit and the
   * session is kept: it reports net changes, and the rolled-back ones no longer exist, while the
   * earlier changes it holds still do. Otherwise the unit flushed at its start (see mark()), so
   * every op past the mark and the current session belong to the unit alone: drop them.
   */
  rollbackTo(mark: CaptureMark): void {
    if (this.session !== undefined && this.sessionNumber === mark.session) {
      assert(this.ops.length === mark.ops, 'ops were added by a unit that did not flush first')
      return
    }
    this.ops.length = mark.ops
    this.openSession()
  }

  /** Closes the current run of row changes into an op. */
  flush(): void {
    this.closeSession()
    this.openSession()
  }

  /** Before a DDL statement: its own side effects (FTS5 config rows, say) are not row changes to send. */
  beforeDdl(): void {
    this.closeSession()
  }

  afterDdl(sql: string): void {
    this.ops.push({ kind: 'ddl', sql })
    this.sequence = undefined
    this.sequenceReader.schemaChanged()
    this.openSession()
  }

  /** Ends the capture and returns the transaction's ops (empty when nothing changed). */
  finish(): Op[] {
    this.closeSession()
    const now = this.internally(() => this.sequenceReader.read())
    const changed = this.sequence === undefined ? now.size > 0 : !sameSequence(this.sequence, now)
    if (changed) this.ops.push({ kind: 'sequence', rows: [...now] })
    this.sequence = now
    const ops = this.ops
    this.ops = []
    return ops
  }

  /** Abandons the capture after the transaction rolled back. */
  abort(): void {
    this.session?.close()
    this.session = undefined
    this.ops = []
    this.sequence = undefined
    this.sequenceReader.schemaChanged()
  }

  private openSession(): void {
    this.session?.close()
    this.session = this.connection.createSession()
    this.sessionNumber++
  }

  private closeSession(): void {
    if (this.session === undefined) return
    const session = this.session
    const bytes = this.internally(() => session.changeset())
    this.session.close()
    this.session = undefined
    if (bytes.length > 0) this.ops.push({ kind: 'changeset', bytes })
  }
}

/** Reads sqlite_sequence once per transaction, cheaply: it exists only after AUTOINCREMENT. */
class SequenceReader {
  private readonly connection: Connection
  private select: Statement | undefined
  private exists: boolean | undefined

  constructor(connection: Connection) {
    this.connection = connection
  }

  schemaChanged(): void {
    this.exists = undefined
    this.select = undefined
  }

  read(): Map<string, number> {
    this.exists ??= this.connection.prepare(`SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence'`).get() !== undefined
    if (!this.exists) return new Map()
    this.select ??= this.connection.prepare('SELECT name, seq FROM sqlite_sequence ORDER BY name')
    const rows = this.select.all() as { name: string; seq: number }[]
    return new Map(rows.map((r) => [r.name, r.seq]))
  }
}

function sameSequence(a: Map<string, number>, b: Map<string, number>): boolean {
  if (a.size !== b.size) return false
  for (const [name, seq] of b) if (a.get(name) !== seq) return false
  return true
}
