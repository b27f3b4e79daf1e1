/**
 * Size bounds that more than one node must agree on, so they are constants, not flags: a
 * replica whose limits were smaller than its master's could be handed an entry it cannot take.
 *
 * The chain: client SQL can make no string, BLOB or row larger than `valueBytesMax` (SQLite's
 * SQLITE_LIMIT_LENGTH on every connection that runs client SQL); one entry holds at most
 * `entryBytesMax` of encoded row changes (the write pipeline refuses a request past it, and
 * commits a group-committed batch past it one request at a time); a replica accepts frames up
 * to `frameBytesMax`, and the master never puts more than one entry past its batch size in a
 * frame. So every committed entry fits in a frame.
 */

/** Largest string, BLOB or row client SQL can make: 64 MiB. */
export const valueBytesMax = 64 * 1024 * 1024

/**
 * Largest entry (its encoded ops). An UPDATE's changeset carries a row's old and new values,
 * so one statement on one maximal row needs twice `valueBytesMax`; a third more is margin for
 * the changeset's own framing and a few small rows beside it.
 */
export const entryBytesMax = 3 * valueBytesMax

/** Largest replication frame a replica accepts: one entry alone, with its framing. */
export const frameBytesMax = entryBytesMax + 1024 * 1024
