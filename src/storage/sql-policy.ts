import { TandemError } from '../shared/errors.ts'
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

const ddlActions = new Set<number>([
  action.CREATE_INDEX, action.CREATE_TABLE, action.CREATE_TRIGGER, action.CREATE_VIEW,
  action.DROP_INDEX, action.DROP_TABLE, action.DROP_TRIGGER, action.DROP_VIEW, action.ALTER_TABLE,
  action.REINDEX, action.ANALYZE, action.CREATE_VTABLE, action.DROP_VTABLE,
])
const writeActions = new Set<number>([action.INSERT, action.UPDATE, action.DELETE, ...ddlActions])
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
    connection.setAuthorizer(this.authorize)
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

  private readonly authorize: AuthorizerCallback = (code, arg1, arg2) => {
    if (this.internalDepth > 0) return auth.OK
    const refusal = refusalFor(code, arg1, arg2)
    if (refusal !== undefined) {
      this.observation.refusal ??= refusal
      return auth.DENY
    }
    if (writeActions.has(code)) this.observation.isWrite = true
    if (ddlActions.has(code)) this.observation.isDdl = true
    return auth.OK
  }
}

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
    case action.CREATE_INDEX:
    case action.CREATE_TRIGGER:
    case action.CREATE_VIEW:
    case action.DROP_TABLE:
    case action.DROP_INDEX:
    case action.DROP_TRIGGER:
    case action.DROP_VIEW:
      return isInternalName(arg1) ? `${arg1} is a Tandem table and cannot be changed by SQL` : undefined
    case action.ALTER_TABLE:
      return isInternalName(arg2) ? `${arg2} is a Tandem table and cannot be changed by SQL` : undefined
    case action.CREATE_VTABLE:
      return isInternalName(arg1) ? `names starting with ${internalPrefix} are reserved for Tandem` : undefined
    default:
      if (tempActions.has(code)) return 'temporary tables, views, indexes and triggers are not allowed: they would not be replicated'
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
