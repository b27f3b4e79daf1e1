/**
 * The replication log, stored in the node's own database so that data and log commit in one
 * transaction and can never disagree.
 *
 *     _tandem_log(lsn INTEGER PRIMARY KEY, epoch INTEGER, time REAL, crc INTEGER, ops BLOB, hash BLOB)
 *                                                      -- hash: the history hash (log-entry.ts); NULL
 *                                                      -- in entries written before there was one
 *     _tandem_meta(key TEXT PRIMARY KEY, value)       -- 'epoch': the highest epoch this node knows;
 *                                                      -- 'vote': the promotion it accepted last
 *     _tandem_idempotency(key, hash, lsn, results, at) -- replicated; see master/idempotency.ts
 *     _tandem_epochs(epoch INTEGER PRIMARY KEY, start_lsn) -- replicated: where each epoch began
 *
 * The epoch history is PostgreSQL's timeline history: epoch 1 begins at LSN 1; a promotion
 * writes its epoch's row as the first entry of that epoch. Two logs that hold an entry with the
 * same LSN and epoch agree on every entry up to it (one master writes each epoch), so a node's
 * history is a prefix of the master's exactly when its newest entry is in the master's log.
 * `_tandem_meta` is never written inside a captured transaction: each node keeps its own.
 *
 * Validity: LSNs are contiguous from the oldest retained entry to the newest; every row's crc
 * matches (see log-entry.ts). The node's position is its newest entry; an empty log means
 * position (epoch, 0). Retention deletes from the oldest end only and always keeps the newest
 * entry, so the position survives truncation.
 */
import { assert } from '../shared/assert.ts'
import type { Connection, Statement } from '../storage/sqlite.ts'
import { followsHistory, hashHex, verifyEntry, type LogEntry, type Position } from './log-entry.ts'

export type Internally = <T>(fn: () => T) => T

/** A node that asks to be promoted. */
export interface VoteCandidate {
  id: string
  url: string
}

export interface Vote {
  epoch: number
  candidate: VoteCandidate
}

const schema = `
  CREATE TABLE IF NOT EXISTS _tandem_log (
    lsn INTEGER PRIMARY KEY, epoch INTEGER NOT NULL, time REAL NOT NULL, crc INTEGER NOT NULL, ops BLOB NOT NULL, hash BLOB
  );
  CREATE TABLE IF NOT EXISTS _tandem_meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
  INSERT OR IGNORE INTO _tandem_meta(key, value) VALUES ('epoch', 1);
  CREATE TABLE IF NOT EXISTS _tandem_epochs (epoch INTEGER PRIMARY KEY, start_lsn INTEGER NOT NULL);
  INSERT OR IGNORE INTO _tandem_epochs(epoch, start_lsn) VALUES (1, 1);
  CREATE TABLE IF NOT EXISTS _tandem_idempotency (
    key TEXT PRIMARY KEY, hash TEXT NOT NULL, lsn INTEGER NOT NULL, results TEXT NOT NULL, at REAL NOT NULL
  ) WITHOUT ROWID;
`

export class LogStore {
  private readonly insert: Statement
  private readonly selectRange: Statement
  private readonly selectOne: Statement

  private readonly connection: Connection
  private readonly internally: Internally

  constructor(connection: Connection, internally: Internally = (fn) => fn()) {
    this.connection = connection
    this.internally = internally
    this.insert = this.internally(() => connection.prepare('INSERT INTO _tandem_log(lsn, epoch, time, crc, ops, hash) VALUES (?, ?, ?, ?, ?, ?)'))
    this.selectRange = this.internally(() =>
      connection.prepare('SELECT lsn, epoch, time, crc, ops, hash FROM _tandem_log WHERE lsn >= ? ORDER BY lsn LIMIT ?'),
    )
    this.selectOne = this.internally(() => connection.prepare('SELECT lsn, epoch, time, crc, ops, hash FROM _tandem_log WHERE lsn = ?'))
  }

  /** Creates the log tables; call once on the node's writing connection before any LogStore. */
  static ensureSchema(connection: Connection, internally: Internally = (fn) => fn()): void {
    internally(() => {
      connection.exec(schema)
      // A log from before entries had history hashes: its entries keep none, the next ones chain on.
      // exec() only: a prepared statement left unfinalized keeps the file open after close(),
      // and a snapshot install that then replaces the file fails with a disk I/O error.
      try {
        connection.exec('ALTER TABLE _tandem_log ADD COLUMN hash BLOB')
      } catch (error) {
        if (!/duplicate column name/.test(error instanceof Error ? error.message : String(error))) throw error
      }
    })
  }

  /** Appends inside the caller's transaction. */
  append(entry: LogEntry): void {
    this.internally(() => this.insert.run(entry.lsn, entry.epoch, entry.time, entry.crc, entry.ops, entry.hash))
  }

  position(): Position {
    return this.internally(() => {
      const last = this.connection.prepare('SELECT lsn, epoch, hash FROM _tandem_log ORDER BY lsn DESC LIMIT 1').get() as
        | { lsn: number; epoch: number; hash: Uint8Array | null }
        | undefined
      if (last === undefined) return { lsn: 0, epoch: this.epoch() }
      const hash = hashHex(last.hash)
      return hash === undefined ? { lsn: last.lsn, epoch: last.epoch } : { lsn: last.lsn, epoch: last.epoch, hash }
    })
  }

  /**
   * History hashes of the newest 16 entries, then of entries 32, 64, 128, … before the newest,
   * down to the oldest held: what a replica tells its master when it connects, so that the
   * master finds the newest entry both histories share when they differ (exactly within 16
   * entries of the newest, within a factor of two further back). Entries without a hash are
   * left out.
   */
  marks(): { lsn: number; hash: string }[] {
    const newest = this.position().lsn
    const oldest = this.oldestLsn()
    if (newest === 0 || oldest === undefined) return []
    const lsns: number[] = []
    for (let back = 0; newest - back > oldest; back = back < 16 ? back + 1 : back * 2) lsns.push(newest - back)
    lsns.push(oldest)
    const marks: { lsn: number; hash: string }[] = []
    for (const lsn of lsns) {
      const hash = hashHex((this.internally(() => this.selectOne.get(lsn)) as LogEntry | undefined)?.hash ?? null)
      if (hash !== undefined) marks.push({ lsn, hash })
    }
    return marks
  }

  /**
   * The newest of `marks` (another log's, see marks()) that this log holds with the same history
   * hash: the two logs are equal up to it. Undefined when none is.
   */
  newestShared(marks: readonly { lsn: number; hash: string }[], upTo: number): number | undefined {
    let shared: number | undefined
    for (const mark of marks) {
      if (mark.lsn > upTo || (shared !== undefined && mark.lsn <= shared)) continue
      const own = this.internally(() => this.selectOne.get(mark.lsn)) as LogEntry | undefined
      if (own !== undefined && hashHex(own.hash) === mark.hash) shared = mark.lsn
    }
    return shared
  }

  /** The oldest LSN still held, or undefined when the log is empty. */
  oldestLsn(): number | undefined {
    return this.internally(() => {
      const row = this.connection.prepare('SELECT min(lsn) AS lsn FROM _tandem_log').get() as { lsn: number | null }
      return row.lsn ?? undefined
    })
  }

  /**
   * The highest epoch this node knows. Cached: only raiseEpoch() changes it, through this store
   * (every HTTP answer carries it, so it must cost nothing).
   */
  epoch(): number {
    this.knownEpoch ??= this.internally(() => {
      const row = this.connection.prepare(`SELECT value FROM _tandem_meta WHERE key = 'epoch'`).get() as { value: number } | undefined
      return row?.value ?? 1
    })
    return this.knownEpoch
  }

  private knownEpoch: number | undefined

  /**
   * Raises the highest epoch this node knows (never lowers it). Call inside a transaction (it is
   * as durable as the transaction) or alone: then it is durable when it returns, whatever the
   * connection's synchronous level (fencing must survive a crash).
   */
  raiseEpoch(epoch: number): void {
    this.internally(() => {
      const isAlone = !this.connection.isTransaction
      const level = isAlone ? (this.connection.prepare('PRAGMA synchronous').get() as { synchronous: number }).synchronous : 2
      if (level < 2) this.connection.exec('PRAGMA synchronous = FULL')
      try {
        this.connection.prepare(`UPDATE _tandem_meta SET value = max(value, ?) WHERE key = 'epoch'`).run(epoch)
      } finally {
        if (level < 2) this.connection.exec(`PRAGMA synchronous = ${level}`)
      }
    })
    this.knownEpoch = Math.max(this.epoch(), epoch)
  }

  /**
   * The promotion this node accepted last: `candidate` is to be the master of `epoch`. One per
   * epoch (see grantVote()).
   */
  vote(): Vote | undefined {
    return this.internally(() => {
      const row = this.connection.prepare(`SELECT value FROM _tandem_meta WHERE key = 'vote'`).get() as { value: string } | undefined
      return row === undefined ? undefined : (JSON.parse(row.value) as Vote)
    })
  }

  /**
   * A compare-and-set on the epochs this node knows: accepts `candidate` as the master of `epoch`
   * when `epoch` is above every epoch this node knows and every one it accepted a candidate for,
   * or when it accepted this same candidate for it already. The vote is durable before this
   * returns (whatever the connection's synchronous level), and with `raise` the epoch becomes
   * the highest this node knows (a replica's fence; a master keeps serving its own epoch, deposed).
   * Refused otherwise: another candidate has `epoch`, or a master wrote in it or a later one. A
   * promotion needs a majority of grants, so two candidates can never both win one epoch. Call
   * outside a transaction.
   */
  grantVote(epoch: number, candidate: VoteCandidate, raise: boolean): { granted: boolean; vote: Vote | undefined } {
    const vote = this.vote()
    if (vote !== undefined && vote.epoch === epoch && vote.candidate.id === candidate.id) return { granted: true, vote }
    if (epoch <= Math.max(this.epoch(), vote?.epoch ?? 0)) return { granted: false, vote }
    const granted: Vote = { epoch, candidate }
    this.internally(() => {
      const level = (this.connection.prepare('PRAGMA synchronous').get() as { synchronous: number }).synchronous
      if (level < 2) this.connection.exec('PRAGMA synchronous = FULL')
      try {
        this.connection.exec('BEGIN IMMEDIATE')
        try {
          if (raise) this.connection.prepare(`UPDATE _tandem_meta SET value = max(value, ?) WHERE key = 'epoch'`).run(epoch)
          this.connection.prepare(`INSERT INTO _tandem_meta(key, value) VALUES ('vote', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`).run(JSON.stringify(granted))
          this.connection.exec('COMMIT')
        } catch (error) {
          if (this.connection.isTransaction) this.connection.exec('ROLLBACK')
          throw error
        }
      } finally {
        if (level < 2) this.connection.exec(`PRAGMA synchronous = ${level}`)
      }
    })
    if (raise) this.knownEpoch = Math.max(this.epoch(), epoch)
    return { granted: true, vote: granted }
  }

  /** The epoch history, oldest first. */
  epochs(): { epoch: number; startLsn: number }[] {
    return this.internally(
      () => this.connection.prepare('SELECT epoch, start_lsn AS startLsn FROM _tandem_epochs ORDER BY epoch').all() as { epoch: number; startLsn: number }[],
    )
  }

  /**
   * The newest LSN a node whose history ends at `position` shares with this log: its entries
   * after it were never part of this history (they were written by a deposed master).
   */
  forkPoint(position: Position): number {
    const next = this.epochs().find((e) => e.epoch > position.epoch)
    return next === undefined ? position.lsn : Math.min(position.lsn, next.startLsn - 1)
  }

  /** Checks every retained entry's checksum and contiguity; the first problem, or undefined. */
  verify(): string | undefined {
    let expected: number | undefined
    let previousHash: Uint8Array | null = null
    for (const row of this.internally(() => this.connection.prepare('SELECT lsn, epoch, time, crc, ops, hash FROM _tandem_log ORDER BY lsn').iterate()) as IterableIterator<LogEntry>) {
      if (expected !== undefined && row.lsn !== expected) return `the log has a gap: entry ${expected} is missing before ${row.lsn}`
      try {
        verifyEntry(row)
      } catch (error) {
        return error instanceof Error ? error.message : String(error)
      }
      if (expected !== undefined && !followsHistory(row, previousHash)) return `entry ${row.lsn} does not follow entry ${row.lsn - 1}: its history hash differs`
      previousHash = row.hash
      expected = row.lsn + 1
    }
    return undefined
  }

  get(lsn: number): LogEntry | undefined {
    const row = this.internally(() => this.selectOne.get(lsn)) as LogEntry | undefined
    if (row !== undefined) verifyEntry(row)
    return row
  }

  /**
   * Entries from `fromLsn` on, in order, verified, up to `countMax` entries or about `bytesMax`
   * bytes (at least one entry when any exists).
   */
  read(fromLsn: number, countMax: number, bytesMax: number): LogEntry[] {
    const out: LogEntry[] = []
    let bytes = 0
    // Row by row, stopping at bytesMax: rows read past it would only be garbage, and under a
    // catch-up that garbage (Buffers, outside V8's heap) is what a master's memory grew by.
    this.internally(() => {
      for (const row of this.selectRange.iterate(fromLsn, countMax) as IterableIterator<LogEntry>) {
        // The oldest entries may have been truncated since the caller looked: return nothing, and
        // the caller sees from oldestLsn() that it needs a snapshot.
        if (out.length === 0 && row.lsn !== fromLsn) return
        verifyEntry(row)
        assert(row.lsn === fromLsn + out.length, `log must be contiguous: expected ${fromLsn + out.length}, found ${row.lsn}`)
        out.push(row)
        bytes += row.ops.length
        if (bytes >= bytesMax) return
      }
    })
    return out
  }

  /** (lsn, size) of every entry, oldest first, for rebuilding retention accounting at start. */
  sizes(): IterableIterator<{ lsn: number; size: number }> {
    return this.internally(() =>
      this.connection.prepare('SELECT lsn, length(ops) + 32 AS size FROM _tandem_log ORDER BY lsn').iterate(),
    ) as IterableIterator<{ lsn: number; size: number }>
  }

  /** Deletes entries before `lsn`; never the newest. */
  truncateBefore(lsn: number): void {
    this.internally(() =>
      this.connection.prepare('DELETE FROM _tandem_log WHERE lsn < ? AND lsn < (SELECT max(lsn) FROM _tandem_log)').run(lsn),
    )
  }
}
