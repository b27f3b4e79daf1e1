import { TandemError } from '../shared/errors.ts'
import { sqlTokens } from './sql-tokens.ts'
import type { SplitStatement } from './sql-splitter.ts'
import { action, auth, type AuthorizerCallback, type Connection } from './sqlite.ts'

/**
 * What client SQL may do, enforced by SQLite's authorizer at prepare time on every connection
 * that runs client SQL. The same callback also observes what a statement will do (write? change
 * the schema?), which is how the writer knows a statement is DDL before running it.
 *
 * Refused everywhere: ATTACH/DETACH (another file is outside replication), BEGIN/COMMIT/
 * SAVEPOINT (the writer owns the transaction; use the `transaction` flag), temporary objects
 * (not replicated), load_extension, PRAGMAs that change state, and writes to Tandem's own
 * `_tandem_*` tables. VACUUM has no authorizer code, so it is refused by keyword.
 *
 * Temporary objects are refused by the database the authorizer names, not only by its TEMP
 * action codes: `CREATE TABLE temp.t` reports CREATE_TABLE in `temp`, and `CREATE TRIGGER
 * temp.x … ON t` reports CREATE_TRIGGER in `main` followed by an INSERT into
 * sqlite_temp_master. Such objects live on one connection only, are neither replicated nor
 * durable, and a temporary trigger on a user table makes the master's rows differ from every
 * replica's. Triggers and indexes are judged by the table they are on (the authorizer's second
 * argument), so none can sit on a `_tandem_*` table, where Tandem's own writes would fire it.
 */
export const internalPrefix = '_tandem_'

/** PRAGMAs that only read, and may take an argument (a table name). */
const pragmasWithArgument = new Set([
  'table_info', 'table_xinfo', 'table_list', 'index_list', 'index_info', 'index_xinfo',
  'foreign_key_list', 'foreign_key_check', 'integrity_check', 'quick_check',
])
/** PRAGMAs allowed only as reads, without a value. */
const pragmasReadOnly = new Set([
  'schema_version', 'user_version', 'application_id', 'page_size', 'page_count', 'freelist_count',
  'encoding', 'foreign_keys', 'journal_mode', 'data_version', 'compile_options', 'database_list',
  'collation_list', 'function_list', 'module_list', 'pragma_list', 'synchronous', 'auto_vacuum',
])

/**
 * Codes `authorize` allows whatever their arguments, on any connection, inside Tandem's own
 * statements or not: reading a column, a SELECT, a recursive CTE. The engine answers them without
 * the call into JavaScript (sqlite.ts); sql-policy.test.ts checks authorize agrees.
 */
export const alwaysAllowed: readonly number[] = [action.READ, action.SELECT, action.RECURSIVE]

const ddlActions = new Set<number>([
  action.CREATE_INDEX, action.CREATE_TABLE, action.CREATE_TRIGGER, action.CREATE_VIEW,
  action.DROP_INDEX, action.DROP_TABLE, action.DROP_TRIGGER, action.DROP_VIEW, action.ALTER_TABLE,
  action.REINDEX, action.ANALYZE, action.CREATE_VTABLE, action.DROP_VTABLE,
])
const writeActions = new Set<number>([action.INSERT, action.UPDATE, action.DELETE, ...ddlActions])
/**
 * Writes in `temp` that make something temporary. Not UPDATE: ALTER TABLE … RENAME updates
 * sqlite_temp_master (to rename what temporary triggers name), which is empty here, and no
 * temporary table exists for a client's UPDATE to change.
 */
const tempWriteActions = new Set<number>([...writeActions].filter((code) => code !== action.UPDATE))
const tempActions = new Set<number>([
  action.CREATE_TEMP_INDEX, action.CREATE_TEMP_TABLE, action.CREATE_TEMP_TRIGGER, action.CREATE_TEMP_VIEW,
  action.DROP_TEMP_INDEX, action.DROP_TEMP_TABLE, action.DROP_TEMP_TRIGGER, action.DROP_TEMP_VIEW,
])

/** What the last prepared statement will do. */
export interface Observation {
  isWrite: boolean
  isDdl: boolean
  /** Why the statement was refused, if it was. */
  refusal: string | undefined
}

export class SqlPolicy {
  private internalDepth = 0
  private observation: Observation = { isWrite: false, isDdl: false, refusal: undefined }

  /** Installs the policy on a connection that runs client SQL. */
  install(connection: Connection): void {
    connection.setAuthorizer(this.authorize, alwaysAllowed)
  }

  /** Runs Tandem's own statements (log append, position, pragmas) past the policy. */
  internally<T>(fn: () => T): T {
    this.internalDepth++
    try {
      return fn()
    } finally {
      this.internalDepth--
    }
  }

  /** Prepares a client statement and reports what it will do; throws SQL_REFUSED when refused. */
  observe<T>(prepare: () => T): { value: T; observation: Observation } {
    this.observation = { isWrite: false, isDdl: false, refusal: undefined }
    let value: T
    try {
      value = prepare()
    } catch (error) {
      const refusal = this.observation.refusal
      if (refusal !== undefined) throw new TandemError('SQL_REFUSED', refusal, { cause: error })
      throw error
    }
    return { value, observation: this.observation }
  }

  private readonly authorize: AuthorizerCallback = (code, arg1, arg2, database) => {
    if (this.internalDepth > 0) return auth.OK
    const refusal = database === 'temp' && tempWriteActions.has(code) ? tempRefusal : refusalFor(code, arg1, arg2)
    if (refusal !== undefined) {
      this.observation.refusal ??= refusal
      return auth.DENY
    }
    if (writeActions.has(code)) this.observation.isWrite = true
    if (ddlActions.has(code)) this.observation.isDdl = true
    return auth.OK
  }
}

const tempRefusal = 'temporary tables, views, indexes and triggers (TEMP, TEMPORARY or temp.) are not allowed: they would exist on one connection only, neither replicated nor durable'

function refusalFor(code: number, arg1: string | null, arg2: string | null): string | undefined {
  switch (code) {
    case action.ATTACH:
    case action.DETACH:
      return 'ATTACH and DETACH are not allowed: another database file would be outside replication'
    case action.TRANSACTION:
    case action.SAVEPOINT:
      return 'BEGIN, COMMIT, ROLLBACK and SAVEPOINT are not allowed: send the statements in one request with the `transaction` flag'
    case action.FUNCTION:
      return arg2?.toLowerCase() === 'load_extension' ? 'load_extension() is not allowed' : undefined
    case action.PRAGMA:
      return pragmaRefusal(arg1 ?? '', arg2)
    case action.INSERT:
    case action.UPDATE:
    case action.DELETE:
    case action.CREATE_TABLE:
    case action.CREATE_VIEW:
    case action.DROP_TABLE:
    case action.DROP_VIEW:
      return isInternalName(arg1) ? `${arg1} is a Tandem table and cannot be changed by SQL` : undefined
    case action.CREATE_INDEX:
    case action.CREATE_TRIGGER:
    case action.DROP_INDEX:
      // arg1 names the index or trigger, arg2 the table it is on.
      if (isInternalName(arg2)) return `${arg2} is a Tandem table: no index or trigger may be created on it, and its indexes are Tandem's`
      return isInternalName(arg1) ? `${arg1}: names starting with ${internalPrefix} are reserved for Tandem` : undefined
    case action.DROP_TRIGGER:
      // Dropping a trigger someone put on a Tandem table before this rule existed is the cure.
      return isInternalName(arg1) ? `${arg1}: names starting with ${internalPrefix} are reserved for Tandem` : undefined
    case action.ALTER_TABLE:
      return isInternalName(arg2) ? `${arg2} is a Tandem table and cannot be changed by SQL` : undefined
    case action.CREATE_VTABLE:
      return isInternalName(arg1) ? `names starting with ${internalPrefix} are reserved for Tandem` : undefined
    default:
      if (tempActions.has(code)) return tempRefusal
      return undefined
  }
}

function pragmaRefusal(name: string, value: string | null): string | undefined {
  const pragma = name.toLowerCase()
  if (pragmasWithArgument.has(pragma)) return undefined
  if (pragmasReadOnly.has(pragma) && value === null) return undefined
  return `PRAGMA ${pragma}${value === null ? '' : ` = ${value}`} is not allowed: only read-only PRAGMAs run through Tandem`
}

function isInternalName(name: string | null): boolean {
  return name !== null && name.toLowerCase().startsWith(internalPrefix)
}

/** Keyword checks for what the authorizer never sees. */
export function keywordRefusal(keyword: string): string | undefined {
  if (keyword === 'VACUUM') return 'VACUUM is not allowed through the API: it cannot run inside the replicated transaction, and VACUUM INTO writes a file outside replication'
  return undefined
}

const schemaKeywords = new Set(['CREATE', 'ALTER'])

/**
 * Text checks for what the authorizer does not see when a schema statement runs: a trigger's
 * body is only authorized when a statement fires it (a trigger on a user table that writes
 * `_tandem_log` would be created, and then refuse every write to its table), and ALTER TABLE …
 * RENAME TO reports the old name only. A schema statement that names a `_tandem_*` identifier
 * anywhere is refused; such names are Tandem's.
 */
export function textRefusal(part: SplitStatement): string | undefined {
  if (!schemaKeywords.has(part.keyword)) return undefined
  for (const token of sqlTokens(part.sql)) {
    if (token.kind === 'identifier' && isInternalName(token.text)) {
      return `${token.text}: names starting with ${internalPrefix} are Tandem's; a CREATE or ALTER statement may not name them (a trigger on a user table may not write Tandem's tables)`
    }
  }
  return undefined
}
