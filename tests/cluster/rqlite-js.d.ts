/** The part of rqlite-js (npm `rqlite-js`, untyped) that the client compatibility test uses. */
declare module 'rqlite-js' {
  export interface RequestOptions {
    level?: 'none' | 'weak' | 'strong' | 'linearizable'
    transaction?: boolean
    timings?: boolean
    pretty?: boolean
    raw?: boolean
  }

  // Result types are not exported by the package: they reach callers only as return values.
  export interface DataResultError extends Error {
    toObject(): { error: string }
  }

  export interface DataResult {
    get(column: string): unknown
    getLastInsertId(): number | undefined
    getRowsAffected(): number
    getTime(): number
    toObject(): Record<string, unknown>
  }

  export interface DataResults {
    hasError(): boolean
    getFirstError(): DataResultError | undefined
    get(index: number): DataResult | DataResultError | undefined
    getResults(): (DataResult | DataResultError)[]
    getTime(): number
    toArray(): Record<string, unknown>[]
  }

  export type Statement = string | [string, ...unknown[]]

  export class DataApiClient {
    constructor(hosts: string | string[], options?: Record<string, unknown>)
    execute(sql: Statement | Statement[], options?: RequestOptions): Promise<DataResults>
    query(sql: string | Statement[], options?: RequestOptions): Promise<DataResults>
  }

  export class StatusApiClient {
    constructor(hosts: string | string[], options?: Record<string, unknown>)
    status(options?: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }>
  }

  export class BackupApiClient {
    constructor(hosts: string | string[], options?: Record<string, unknown>)
    backup(format?: 'sql' | 'dump'): Promise<NodeJS.ReadableStream>
  }
}
