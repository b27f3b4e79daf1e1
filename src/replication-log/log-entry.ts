/**
 * Log entries: their in-memory form, the binary encoding of their ops, and their checksum.
 *
 * An entry is one committed write transaction on the master: `{lsn, epoch, time, ops}`.
 * LSNs start at 1 and have no gaps. `time` is the master's commit time in ms since the Unix
 * epoch. Plain JS numbers hold LSNs exactly up to 2^53.
 *
 * Ops encoding, version 1 (the `ops` blob in the log table and on the wire):
 *
 *     ops   := op*
 *     op    := kind:u8  length:u32be  payload[length]
 *     kind  := 1 ddl        payload = SQL text, UTF-8
 *            | 2 changeset  payload = SQLite changeset bytes
 *            | 3 sequence   payload = JSON [[name, seq], ...], the whole sqlite_sequence
 *
 * Checksum: CRC-32 over `lsn:u64be epoch:u32be time:f64be` followed by the ops blob. It is
 * computed once when the master appends the entry, stored beside it, carried on the wire, and
 * verified whenever an entry is read or received; a mismatch is LOG_CORRUPTED and the entry is
 * never applied.
 *
 * History hash: the first 16 bytes of SHA-256 over the previous entry's hash (16 zero bytes for
 * the first entry, or one written before entries had hashes), `lsn:u64be epoch:u32be time:f64be`
 * and the ops blob. So an entry's hash names the whole history up to it: two logs hold the same
 * entries up to LSN n exactly when their hashes at n are equal. The master computes it when it
 * appends; a replica computes it again from its own previous hash and compares it with the one
 * the master sent, so a history that left the master's is found at the first entry that differs.
 */
import { createHash } from 'node:crypto'
import { TandemError } from '../shared/errors.ts'
import type { Op, SequenceRow } from '../storage/ops.ts'
import { crc32 } from './crc32.ts'

export interface LogEntry {
  lsn: number
  epoch: number
  time: number
  /** The encoded ops blob. */
  ops: Uint8Array
  crc: number
  /** The history hash (hashBytes long); null for an entry written before entries had one. */
  hash: Uint8Array | null
}

export interface Position {
  epoch: number
  lsn: number
  /** The newest entry's history hash, hex; absent when unknown (an empty log, an entry without one). */
  hash?: string
}

export const hashBytes = 16
const noHash = new Uint8Array(hashBytes)

const OP_DDL = 1
const OP_CHANGESET = 2
const OP_SEQUENCE = 3
const OP_LOAD = 4

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function encodeOps(ops: readonly Op[]): Uint8Array {
  const payloads = ops.map((op) => {
    if (op.kind === 'ddl') return { kind: OP_DDL, bytes: encoder.encode(op.sql) }
    if (op.kind === 'changeset') return { kind: OP_CHANGESET, bytes: op.bytes }
    if (op.kind === 'load') return { kind: OP_LOAD, bytes: new Uint8Array(0) }
    return { kind: OP_SEQUENCE, bytes: encoder.encode(JSON.stringify(op.rows)) }
  })
  const size = payloads.reduce((sum, p) => sum + 5 + p.bytes.length, 0)
  const out = new Uint8Array(size)
  const view = new DataView(out.buffer)
  let at = 0
  for (const p of payloads) {
    out[at] = p.kind
    view.setUint32(at + 1, p.bytes.length)
    out.set(p.bytes, at + 5)
    at += 5 + p.bytes.length
  }
  return out
}

export function decodeOps(bytes: Uint8Array): Op[] {
  const ops: Op[] = []
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let at = 0
  while (at < bytes.length) {
    if (at + 5 > bytes.length) throw new TandemError('LOG_CORRUPTED', 'ops blob ends inside an op header')
    const kind = bytes[at]
    const length = view.getUint32(at + 1)
    const payload = bytes.subarray(at + 5, at + 5 + length)
    if (payload.length !== length) throw new TandemError('LOG_CORRUPTED', 'ops blob ends inside an op')
    if (kind === OP_DDL) ops.push({ kind: 'ddl', sql: decoder.decode(payload) })
    else if (kind === OP_CHANGESET) ops.push({ kind: 'changeset', bytes: payload })
    else if (kind === OP_SEQUENCE) ops.push({ kind: 'sequence', rows: sequenceRows(payload) })
    else if (kind === OP_LOAD && length === 0) ops.push({ kind: 'load' })
    else throw new TandemError('LOG_CORRUPTED', `unknown op kind ${kind}`)
    at += 5 + length
  }
  return ops
}

/**
 * A sequence payload's rows. Malformed JSON or a shape other than rows of two is LOG_CORRUPTED,
 * like every other undecodable blob, not a SyntaxError or a TypeError in the applier. The values
 * are not checked: sqlite_sequence holds whatever a client wrote there, and that replicates.
 */
function sequenceRows(payload: Uint8Array): SequenceRow[] {
  let rows: unknown
  try {
    rows = JSON.parse(decoder.decode(payload))
  } catch (cause) {
    throw new TandemError('LOG_CORRUPTED', 'ops blob holds a sequence op that is not JSON', { cause })
  }
  if (!Array.isArray(rows) || !rows.every((row) => Array.isArray(row) && row.length === 2)) {
    throw new TandemError('LOG_CORRUPTED', 'ops blob holds a sequence op that is not a list of [name, seq] rows')
  }
  return rows as SequenceRow[]
}

export function entryChecksum(lsn: number, epoch: number, time: number, ops: Uint8Array): number {
  return crc32(ops, crc32(entryHeader(lsn, epoch, time)))
}

function entryHeader(lsn: number, epoch: number, time: number): Uint8Array {
  const header = new DataView(new ArrayBuffer(20))
  header.setBigUint64(0, BigInt(lsn))
  header.setUint32(8, epoch)
  header.setFloat64(12, time)
  return new Uint8Array(header.buffer)
}

/** The history hash of an entry whose predecessor's hash is `previous` (see the top of this file). */
export function historyHash(previous: Uint8Array | null, lsn: number, epoch: number, time: number, ops: Uint8Array): Uint8Array {
  const hash = createHash('sha256')
  hash.update(previous ?? noHash)
  hash.update(entryHeader(lsn, epoch, time))
  hash.update(ops)
  return new Uint8Array(hash.digest().subarray(0, hashBytes))
}

export function createEntry(lsn: number, epoch: number, time: number, ops: Uint8Array, previousHash: Uint8Array | null): LogEntry {
  return { lsn, epoch, time, ops, crc: entryChecksum(lsn, epoch, time, ops), hash: historyHash(previousHash, lsn, epoch, time, ops) }
}

/**
 * Does `entry` follow a history whose newest hash is `previous`? An entry without a hash (written
 * before entries had one) cannot say: it is taken as following.
 */
export function followsHistory(entry: LogEntry, previous: Uint8Array | null): boolean {
  if (entry.hash === null) return true
  return Buffer.from(historyHash(previous, entry.lsn, entry.epoch, entry.time, entry.ops)).equals(entry.hash)
}

export function hashHex(hash: Uint8Array | null): string | undefined {
  return hash === null ? undefined : Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString('hex')
}

export function hashFromHex(hex: string | undefined): Uint8Array | null {
  return hex === undefined ? null : new Uint8Array(Buffer.from(hex, 'hex'))
}

export function verifyEntry(entry: LogEntry): void {
  if (entryChecksum(entry.lsn, entry.epoch, entry.time, entry.ops) !== entry.crc) {
    throw new TandemError('LOG_CORRUPTED', `log entry ${entry.lsn} fails its checksum: it was corrupted on disk or in transit`, { lsn: entry.lsn })
  }
}
