/**
 * The replication protocol, version 1. Pure: types and codecs, no I/O.
 *
 * A replica opens a WebSocket to `GET /replication` on the master. Control messages are JSON
 * text frames; entries travel in binary frames.
 *
 * Fencing: every message from the master carries its epoch; a replica refuses a master whose
 * epoch is lower than the highest it knows, and a master that hears of a higher epoch (a hello,
 * a confirmation, a forwarded write) stops taking writes at once.
 *
 *   replica → master   hello    {type, version, nodeId, url, position, knownEpoch, clusterId?, marks?, release?}  first message, once;
 *                                                                          clusterId: the replica's cluster, once it has one;
 *                                                                          position.hash, marks: history hashes (LogStore.marks)
 *                      ack      {type, lsn}                                 applied and committed up to lsn
 *                      pong     {type, sentAt, receivedAt}                  answers ping
 *                      confirmed{type, id, epoch}                          answers confirm with the highest epoch it knows
 *                      worker   {type, handlers, concurrency, prefetch?, running}  runs jobs: its handlers, slots, the
 *                                                                          tasks it takes beyond them (queued there; 0
 *                                                                          without the field), and the leases it still
 *                                                                          holds (after a reconnect)
 *                      result   {type, job, index, epoch, token, ok, value?, error?, ms?}   a task ended (value: JSON
 *                                                                          text; ms: how long it ran there)
 *                      progress {type, job, index, epoch, token, value}    in memory on the master, never durable
 *   master → replica   welcome  {type, nodeId, clusterId, epoch, lsn, time, replicas}  streaming starts after
 *                                                                          position; a replica without a cluster id adopts this one
 *                      snapshot {type, reason, forkLsn?}                   position not served: bootstrap, reconnect;
 *                                                                          forkLsn: the replica's entries after it are
 *                                                                          not in the master's history (discard them)
 *                      refuse   {type, code, message}                       cannot serve (not a master, bad version)
 *                      heartbeat{type, epoch, lsn, time, replicas}        every interval: newest LSN, clock, and the
 *                                                                          other replicas' URLs (whom to tell after a promotion)
 *                      ping     {type, sentAt}
 *                      confirm  {type, id, epoch}                          is the sender still the master? (strong reads)
                      flush    {type, lsn}                                 a write waits for this replica: make what it
                                                                          applied durable now, up to lsn (a replica
                                                                          otherwise may hold its sync a few ms)
 *                      assign   {type, job, index, epoch, token, name, input, lsn, timeoutMs, attempt}
 *                                                                          a lease: run this task (input: JSON text) once
 *                                                                          the replica has applied lsn
 *                      cancel   {type, job, index, epoch, token}           stop running it (cancelled, or lease lost)
 *                      recorded {type, job, index, epoch, token, accepted, reason?}  the master's answer to a result
 *
 * Leases: an assignment is valid while the replica keeps acknowledging (every ack renews every
 * lease it holds) and the master keeps its epoch; a result counts only for the live lease
 * (same epoch, same token), so each task's result is recorded once.
 *                      (binary) entries frame, see encodeEntries()
 *
 * Entries frame: `count:u32be` then per entry
 *   `opsLength:u32be lsn:u64be epoch:u32be time:f64be crc:u32be hash[16] ops[opsLength]`
 * (hash: the history hash, log-entry.ts; 16 zero bytes for an entry without one).
 * Validity: entries in a frame are contiguous and follow the last entry received; every crc
 * verifies; every hash follows the one before it. A replica that receives anything else closes the connection and reconnects.
 */
import { TandemError } from '../shared/errors.ts'
import { hashBytes, type LogEntry, type Position } from '../replication-log/log-entry.ts'

export const protocolVersion = 2

export type ReplicaMessage =
  | { type: 'hello'; version: number; nodeId: string; url: string; position: Position; knownEpoch: number; clusterId?: string; marks?: HistoryMark[]; release?: string }
  | { type: 'ack'; lsn: number }
  | { type: 'pong'; sentAt: number; receivedAt: number }
  | { type: 'confirmed'; id: number; epoch: number }
  | { type: 'worker'; handlers: string[]; concurrency: number; prefetch?: number; running: LeaseRef[] }
  | ({ type: 'result'; ok: boolean; value?: string; error?: string; ms?: number } & LeaseRef)
  | ({ type: 'progress'; value: unknown } & LeaseRef)

/** Names one lease of one task. */
export interface LeaseRef {
  job: string
  index: number
  epoch: number
  token: number
}

/** `after`: the results of the jobs this one runs after, as JSON text ({id: [result…]}); the handler's ctx.after. */
export type Assignment = { type: 'assign'; name: string; input: string; lsn: number; timeoutMs: number; attempt: number; after?: string } & LeaseRef

export type MasterMessage =
  | { type: 'welcome'; nodeId: string; clusterId: string; epoch: number; lsn: number; time: number; replicas: string[] }
  | { type: 'snapshot'; reason: string; forkLsn?: number }
  | { type: 'refuse'; code: string; message: string }
  | { type: 'heartbeat'; epoch: number; lsn: number; time: number; replicas: string[] }
  | { type: 'ping'; sentAt: number }
  | { type: 'confirm'; id: number; epoch: number }
  | { type: 'flush'; lsn: number }
  | Assignment
  | ({ type: 'cancel' } & LeaseRef)
  | ({ type: 'recorded'; accepted: boolean; reason?: string } & LeaseRef)

const entryHeaderBytes = 28 + hashBytes

/**
 * Encodes an entries frame, into `scratch` when it is large enough (then the frame is a view of
 * it, valid until the caller writes there again), else into a new buffer.
 */
export function encodeEntries(entries: readonly LogEntry[], scratch?: Uint8Array): Uint8Array {
  const size = 4 + entries.reduce((sum, e) => sum + entryHeaderBytes + e.ops.length, 0)
  const out = scratch !== undefined && scratch.byteLength >= size ? scratch.subarray(0, size) : new Uint8Array(size)
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength)
  view.setUint32(0, entries.length)
  let at = 4
  for (const e of entries) {
    view.setUint32(at, e.ops.length)
    view.setBigUint64(at + 4, BigInt(e.lsn))
    view.setUint32(at + 12, e.epoch)
    view.setFloat64(at + 16, e.time)
    view.setUint32(at + 24, e.crc)
    if (e.hash === null) out.fill(0, at + 28, at + 28 + hashBytes)
    else out.set(e.hash, at + 28)
    out.set(e.ops, at + entryHeaderBytes)
    at += entryHeaderBytes + e.ops.length
  }
  return out
}

/** A history hash at an LSN (LogStore.marks). */
export interface HistoryMark {
  lsn: number
  hash: string
}

/** 16 zero bytes on the wire: an entry without a history hash. A copy: the frame's memory is reused. */
function hashOrNull(bytes: Uint8Array): Uint8Array | null {
  return bytes.every((b) => b === 0) ? null : bytes.slice()
}

/** Decodes an entries frame. Checksums are verified by the caller (verifyEntry). */
export function decodeEntries(frame: Uint8Array): LogEntry[] {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength)
  if (frame.length < 4) throw new TandemError('PROTOCOL_ERROR', 'entries frame too short')
  const count = view.getUint32(0)
  const entries: LogEntry[] = []
  let at = 4
  for (let i = 0; i < count; i++) {
    if (at + entryHeaderBytes > frame.length) throw new TandemError('PROTOCOL_ERROR', 'entries frame ends inside an entry header')
    const opsLength = view.getUint32(at)
    // A view, not a copy: the entries of a catch-up frame hold its memory only until applied.
    const ops = frame.subarray(at + entryHeaderBytes, at + entryHeaderBytes + opsLength)
    if (ops.length !== opsLength) throw new TandemError('PROTOCOL_ERROR', 'entries frame ends inside an entry')
    entries.push({
      lsn: Number(view.getBigUint64(at + 4)),
      epoch: view.getUint32(at + 12),
      time: view.getFloat64(at + 16),
      crc: view.getUint32(at + 24),
      hash: hashOrNull(frame.subarray(at + 28, at + 28 + hashBytes)),
      ops,
    })
    at += entryHeaderBytes + opsLength
  }
  if (at !== frame.length) throw new TandemError('PROTOCOL_ERROR', 'entries frame has trailing bytes')
  return entries
}

export function parseReplicaMessage(text: string): ReplicaMessage {
  const message = JSON.parse(text) as ReplicaMessage
  if (typeof message !== 'object' || message === null || typeof message.type !== 'string') {
    throw new TandemError('PROTOCOL_ERROR', 'replication message without a type')
  }
  return message
}

export function parseMasterMessage(text: string): MasterMessage {
  const message = JSON.parse(text) as MasterMessage
  if (typeof message !== 'object' || message === null || typeof message.type !== 'string') {
    throw new TandemError('PROTOCOL_ERROR', 'replication message without a type')
  }
  return message
}
