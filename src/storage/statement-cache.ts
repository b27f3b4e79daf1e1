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

interface Prepared {
  statement: Statement
  observation: Observation
  /** When it was last asked for, in prepare() calls: the least recent goes first. */
  usedAt: number
}

export class StatementCache {
  private readonly prepared = new Map<string, Prepared>()
  private uses = 0
  private readonly splits = new Map<string, SplitStatement[]>()
  private readonly connection: Connection
  private readonly policy: SqlPolicy
  private readonly capacity: number

  constructor(connection: Connection, policy: SqlPolicy, capacity = 256) {
    this.connection = connection
    this.policy = policy
    this.capacity = capacity
  }

  split(sql: string): SplitStatement[] {
    if (sql.length > cachedSqlCharsMax) return splitSql(sql)
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
      if (this.prepared.size >= this.capacity) this.evictLeastRecent()
      this.prepared.set(sql, entry)
    }
    return entry
  }

  /** A scan of the entries, on a miss with the cache full only: misses cost a prepare anyway. */
  private evictLeastRecent(): void {
    let oldest: string | undefined
    let oldestAt = Infinity
    for (const [sql, entry] of this.prepared) {
      if (entry.usedAt < oldestAt) {
        oldest = sql
        oldestAt = entry.usedAt
      }
    }
    if (oldest !== undefined) this.prepared.delete(oldest)
  }
}

function remember<V>(map: Map<string, V>, key: string, value: V, capacity: number): void {
  map.set(key, value)
  if (map.size > capacity) map.delete(map.keys().next().value!)
}
