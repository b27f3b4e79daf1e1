/**
 * The error catalogue: every expected failure Tandem reports, with its HTTP status and whether
 * a retry can help. One function (`http-api/error-reply.ts`) turns these into responses; no
 * handler maps statuses itself. The README's error table is checked against this list by a test.
 */
export const codes = {
  BAD_REQUEST: { status: 400, retry: 'never', summary: 'the request is malformed (JSON, parameters, body shape)' },
  SQL_REFUSED: { status: 400, retry: 'never', summary: 'the SQL is valid but not allowed (ATTACH, VACUUM, unsafe PRAGMA, BEGIN/COMMIT, load_extension, internal tables)' },
  SCHEMA_REFUSED: { status: 400, retry: 'never', summary: 'a schema change Tandem cannot replicate (a table without a PRIMARY KEY whose column hides its rowid, or on the prebuilt fallback any table without one; a reserved name)' },
  BODY_TOO_LARGE: { status: 413, retry: 'never', summary: 'the request body is over the size limit' },
  ENTRY_TOO_LARGE: { status: 413, retry: 'never', summary: 'the request changes more bytes than one replication entry carries (192 MiB of row changes): nothing was applied; split it' },
  URI_TOO_LONG: { status: 414, retry: 'never', summary: 'a part of the URL path (a job id, say) is too long' },
  HEADERS_TOO_LARGE: { status: 431, retry: 'never', summary: 'the request line and headers are over the size limit (16 KiB)' },
  REQUEST_TIMEOUT: { status: 408, retry: 'later', summary: 'the request was not received whole in time (--headers-timeout-ms, --request-timeout-ms)' },
  UNAUTHORIZED: { status: 401, retry: 'never', summary: 'no credentials, or wrong ones: send HTTP Basic credentials of a user in the node\'s --auth file' },
  FORBIDDEN: { status: 403, retry: 'never', summary: 'the user lacks the permission this request needs, the request came from a browser page of another origin, or named a host this node does not serve' },
  CLUSTER_MISMATCH: { status: 409, retry: 'never', summary: 'the other node belongs to another cluster (its cluster id differs): it is never followed or copied' },
  NOT_FOUND: { status: 404, retry: 'never', summary: 'no such endpoint or object' },
  METHOD_NOT_ALLOWED: { status: 405, retry: 'never', summary: 'the endpoint does not take this HTTP method' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, retry: 'never', summary: 'the Idempotency-Key was already used for a different request' },
  QUEUE_TIMEOUT: { status: 408, retry: 'never', summary: 'a queued write (?queue&wait) was not applied within timeout; it stays queued and may still be applied' },
  SYNC_TIMEOUT: { status: 202, retry: 'never', summary: 'committed on the master, but not confirmed by the requested number of replicas in time; do not retry' },
  NOT_ENOUGH_REPLICAS: { status: 503, retry: 'later', summary: 'fewer replicas than --min-replicas are within --max-lag of the master; nothing was applied' },
  PROMOTION_REFUSED: { status: 409, retry: 'never', summary: 'another reachable replica is more up to date than the one to promote, another candidate won the epoch, or no majority of the nodes accepted it (pass force to promote it anyway)' },
  JOB_NOT_FOUND: { status: 404, retry: 'never', summary: 'no job with this id (it may have passed its retention)' },
  SCHEDULE_NOT_FOUND: { status: 404, retry: 'never', summary: 'no schedule with this id' },
  LIMIT_NOT_FOUND: { status: 404, retry: 'never', summary: 'no job limit on this scope' },
  DATA_DIR_IN_USE: { status: 409, retry: 'never', summary: 'another Tandem node runs on this data directory: a node refuses to start on it' },
  JOB_FINISHED: { status: 409, retry: 'never', summary: 'the job already finished: it cannot be cancelled' },
  JOB_NOT_RETRYABLE: { status: 409, retry: 'never', summary: 'the job has no dead or cancelled tasks to retry' },
  NOT_MASTER: { status: 421, retry: 'redirect', summary: 'this node is a replica and the request needs the master' },
  NO_MASTER: { status: 503, retry: 'later', summary: 'no master is reachable from this node' },
  MASTER_ANSWER_LOST: { status: 502, retry: 'never', summary: 'a replica forwarded a write but lost the master\'s answer: it may or may not have been applied; retry only with the same Idempotency-Key' },
  LEASE_LOST: { status: 502, retry: 'never', summary: 'the master lost its lease in etcd (--coordinator) after committing the write and before acknowledging it: it may or may not survive the failover that follows; retry only with the same Idempotency-Key' },
  MIN_LSN_TIMEOUT: { status: 503, retry: 'later', summary: 'the replica did not reach the requested min_lsn within min_lsn_timeout' },
  REPLICA_TOO_STALE: { status: 503, retry: 'later', summary: 'the replica has not heard from its master within the freshness bound' },
  REPLICA_DIVERGED: { status: 503, retry: 'later', summary: 'the replica found a conflict while applying and is resyncing from a snapshot' },
  NOT_READY: { status: 503, retry: 'later', summary: 'the node is starting, or installing a snapshot' },
  WRITE_FAILED: { status: 503, retry: 'later', summary: 'the master could not commit (disk full or an I/O error); nothing of the request was applied' },
  OVERLOADED: { status: 503, retry: 'later', summary: 'a write, read or job queue is full (a job past --max-queued-tasks)' },
  CANCELLED: { status: 499, retry: 'later', summary: 'a read stopped because its client went away (the client never sees this answer)' },
  SHUTTING_DOWN: { status: 503, retry: 'later', summary: 'the node is stopping' },
  LOG_CORRUPTED: { status: 500, retry: 'never', summary: 'a log entry failed its checksum or the log has a gap' },
  PROTOCOL_ERROR: { status: 500, retry: 'later', summary: 'a replication peer sent a message this node cannot accept' },
  INTERNAL: { status: 500, retry: 'never', summary: 'a bug: the node logged the details' },
} as const satisfies Record<string, { status: number; retry: 'never' | 'later' | 'redirect'; summary: string }>

export type ErrorCode = keyof typeof codes

export class TandemError extends Error {
  readonly code: ErrorCode
  readonly details: Record<string, unknown>

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> & { cause?: unknown } = {}) {
    const { cause, ...rest } = details
    super(message, cause === undefined ? undefined : { cause })
    this.name = 'TandemError'
    this.code = code
    this.details = rest
  }

  get status(): number {
    return codes[this.code].status
  }
}

export function isTandemError(error: unknown, code?: ErrorCode): error is TandemError {
  return error instanceof TandemError && (code === undefined || error.code === code)
}

/** The message of anything thrown, for logs and per-statement errors. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
