/** What a write asks of the cluster beyond the master's COMMIT. */
export interface WriteOptions {
  /** Replicas that must confirm the write before it is acknowledged; the master's --sync-replicas when undefined. */
  sync?: number
  syncTimeoutMs?: number
  /** The epoch a forwarding replica knows (fencing: a higher one deposes this master). */
  senderEpoch?: number
}

/** How many replicas confirmed a synchronous write. Invariant: confirmed < required means not confirmed in time. */
export interface SyncOutcome {
  required: number
  confirmed: number
}
