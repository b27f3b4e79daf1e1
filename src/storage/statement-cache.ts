import type { Observation, SqlPolicy } from './sql-policy.ts'
import { splitSql, type SplitStatement } from './sql-splitter.ts'
import type { Connection, Statement } from './sqlite.ts'

/**
 * Prepared client statements by SQL text, least recently used first out. Preparing costs more
 * than running a one-row INSERT (parse, plan, and an authorizer call into JS per action), and
 * clients send the same SQL over and over. A cached statement keeps what the policy observed
 * when it was prepared; SQLite re-prepares it by itself after a schema change, under the same
 * authorizer. Schema changes are never cached: they run once.
 */
/**
 * SQL texts longer than this are prepared (and split) each time, never kept: the cache then
 * holds at most capacity × this much SQL text (and the plans of such texts), where 40 distinct
 * 8 MB texts once took a node to ~3 GB. Clients repeat short texts; long ones are rarely sent twice.
 */
export const cachedSqlCharsMax = 64 * 1024

/**
 * Statements kept per connection, and the most SQL text they may hold together. Applications
 * that inline values send hundreds or thousands of distinct texts: 1,024 keeps a thousand of
 * them prepared, and the text bound keeps the cache small when the texts are long.
 */
export const cachedStatementsMax = 1024
export const cachedSqlCharsTotalMax = 4 * 1024 * 1024

interface Prepared {
  statement: Statement
  observation: Observation
  /** When it was last asked for, in prepare() calls: the least recent goes first. */
  usedAt: number
}

export class StatementCache {
  private readonly prepared = new Map<string, Prepared>()
  /** The length of every SQL text in `prepared`, together. */
  private sqlChars = 0
  private uses = 0
  private readonly splits = new Map<string, SplitStatement[]>()
  private readonly connection: Connection
  private readonly policy: SqlPolicy
  private readonly capacity: number

  constructor(connection: Connection, policy: SqlPolicy, capacity = cachedStatementsMax) {
    this.connection = connection
    this.policy = policy
    this.capacity = capacity
  }

  /** How a text splits into statements; kept for texts short enough that 1,024 of them stay small (4 MiB). */
  split(sql: string): SplitStatement[] {
    if (sql.length > cachedSqlCharsTotalMax / cachedStatementsMax) return splitSql(sql)
    let split = this.splits.get(sql)
    if (split === undefined) {
      split = splitSql(sql)
      remember(this.splits, sql, split, this.capacity)
    }
    return split
  }

  /** Prepares under the policy (throws SQL_REFUSED or the SQLite error). */
  prepare(sql: string): { statement: Statement; observation: Observation } {
    const cached = this.prepared.get(sql)
    if (cached !== undefined) {
      // A hit only stamps the entry (moving it to the end of the Map cost more than the lookup).
      cached.usedAt = ++this.uses
      return cached
    }
    const { value: statement, observation } = this.policy.observe(() => this.connection.prepare(sql))
    const entry = { statement, observation: { ...observation }, usedAt: ++this.uses }
    if (!observation.isDdl && sql.length <= cachedSqlCharsMax) {
      if (this.prepared.size >= this.capacity || this.sqlChars + sql.length > cachedSqlCharsTotalMax) this.evictLeastRecent()
      this.prepared.set(sql, entry)
      this.sqlChars += sql.length
    }
    return entry
  }

  /**
   * Makes room: the least recently used eighth of the entries (at least one) goes, found in one
   * scan and a sort, on a miss with the cache full only. One entry at a time cost a scan of every
   * entry on every miss, which a stream of distinct texts makes every read.
   */
  private evictLeastRecent(): void {
    const usedAt = [...this.prepared.values()].map((entry) => entry.usedAt).sort((a, b) => a - b)
    const cutoff = usedAt[Math.max(0, Math.floor(usedAt.length / 8) - 1)]
    if (cutoff === undefined) return
    for (const [sql, entry] of this.prepared) {
      if (entry.usedAt <= cutoff) {
        this.prepared.delete(sql)
        this.sqlChars -= sql.length
      }
    }
  }
}

function remember<V>(map: Map<string, V>, key: string, value: V, capacity: number): void {
  map.set(key, value)
  if (map.size > capacity) map.delete(map.keys().next().value!)
}
