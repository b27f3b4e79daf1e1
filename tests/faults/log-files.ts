/**
 * Reaching into a stopped node's files, as a broken disk or an operator would: flip bytes in a
 * `_tandem_log.ops` blob, delete the newest `_tandem_log` rows, and read a log back to compare
 * it with another node's. Only ever on a node that is not running (the discarded entries
 * excepted: plain files the node writes once).
 */
import { existsSync, readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from '@photostructure/sqlite'
import { verifyEntry, type LogEntry } from '../../src/replication-log/index.ts'
import type { Random } from './seeded-random.ts'

function open(dataDir: string): InstanceType<typeof DatabaseSync> {
  return new DatabaseSync(join(dataDir, 'tandem.db'))
}

/** Flips bytes in the ops of one of the newest entries; returns which entry and how. */
export function corruptNewestEntry(dataDir: string, random: Random, newestCount = 20, flips = 3): { lsn: number; detail: string } {
  const db = open(dataDir)
  try {
    const rows = db.prepare('SELECT lsn, ops FROM _tandem_log ORDER BY lsn DESC LIMIT ?').all(newestCount) as { lsn: number; ops: Uint8Array }[]
    const row = random.pick(rows)
    const ops = Buffer.from(row.ops)
    const offsets: number[] = []
    for (let i = 0; i < flips; i++) {
      const at = random.int(0, ops.length - 1)
      ops[at] = ops[at]! ^ random.int(1, 255)
      offsets.push(at)
    }
    db.prepare('UPDATE _tandem_log SET ops = ? WHERE lsn = ?').run(ops, row.lsn)
    return { lsn: row.lsn, detail: `entry ${row.lsn}: bytes ${offsets.join(', ')} of ${ops.length} flipped` }
  } finally {
    db.close()
  }
}

/** Deletes the newest `count` entries of the log (the data they brought stays). */
export function deleteNewestEntries(dataDir: string, count: number): { fromLsn: number; toLsn: number } {
  const db = open(dataDir)
  try {
    const newest = (db.prepare('SELECT max(lsn) AS lsn FROM _tandem_log').get() as { lsn: number }).lsn
    db.prepare('DELETE FROM _tandem_log WHERE lsn > ?').run(newest - count)
    return { fromLsn: newest - count + 1, toLsn: newest }
  } finally {
    db.close()
  }
}

export function readLog(dataDir: string): LogEntry[] {
  const db = open(dataDir)
  try {
    return db.prepare('SELECT lsn, epoch, time, crc, ops FROM _tandem_log ORDER BY lsn').all() as LogEntry[]
  } finally {
    db.close()
  }
}

/**
 * What is wrong with `log` compared with the master's `reference`: entries failing their
 * checksum, and entries that differ from the master's at the same LSN.
 */
export function logProblems(log: readonly LogEntry[], reference: readonly LogEntry[]): string[] {
  const problems: string[] = []
  const byLsn = new Map(reference.map((e) => [e.lsn, e]))
  for (const entry of log) {
    try {
      verifyEntry(entry)
    } catch (error) {
      problems.push(`entry ${entry.lsn} fails its checksum: ${error instanceof Error ? error.message : String(error)}`)
      continue
    }
    const theirs = byLsn.get(entry.lsn)
    if (theirs !== undefined && (theirs.epoch !== entry.epoch || theirs.crc !== entry.crc || Buffer.compare(Buffer.from(theirs.ops), Buffer.from(entry.ops)) !== 0)) {
      problems.push(`entry ${entry.lsn} differs from the master's`)
    }
  }
  return problems
}

/**
 * The entries a node discarded when it rejoined a new master's history (kept, one JSON line
 * each, under `<data>/discarded/`): how many, and the master commit time of the oldest.
 */
export function discardedEntries(dataDir: string): { count: number; oldestTime: number | undefined } {
  const dir = join(dataDir, 'discarded')
  if (!existsSync(dir)) return { count: 0, oldestTime: undefined }
  let count = 0
  let oldestTime: number | undefined
  for (const file of readdirSync(dir)) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (line === '') continue
      count++
      const time = Date.parse((JSON.parse(line) as { time?: string }).time ?? '')
      if (Number.isFinite(time)) oldestTime = Math.min(oldestTime ?? time, time)
    }
  }
  return { count, oldestTime }
}

/**
 * Cuts the newest `frames` frames off a killed node's WAL, as a disk that acknowledged writes
 * it never made durable would: SQLite recovers the database up to the last commit before the
 * cut, so the node comes back without its newest transactions. Frames of the current WAL
 * generation are the ones after the header that carry its salts. Returns the frames kept and cut.
 */
export function cutWalFrames(dataDir: string, frames: number): { kept: number; cut: number } {
  const path = join(dataDir, 'tandem.db-wal')
  if (!existsSync(path)) return { kept: 0, cut: 0 }
  const wal = readFileSync(path)
  if (wal.length < walHeaderBytes) return { kept: 0, cut: 0 }
  const pageSize = wal.readUInt32BE(8)
  const [salt1, salt2] = [wal.readUInt32BE(16), wal.readUInt32BE(20)]
  const frameBytes = walFrameHeaderBytes + pageSize
  let current = 0
  while (walHeaderBytes + (current + 1) * frameBytes <= wal.length) {
    const at = walHeaderBytes + current * frameBytes
    if (wal.readUInt32BE(at + 8) !== salt1 || wal.readUInt32BE(at + 12) !== salt2) break
    current++
  }
  const kept = Math.max(0, current - frames)
  truncateSync(path, walHeaderBytes + kept * frameBytes)
  return { kept, cut: current - kept }
}

const walHeaderBytes = 32
const walFrameHeaderBytes = 24

/**
 * Changes one character of one stored row in a stopped node's database file, in place (the page
 * stays well formed, no index sees it): the `client` column of a `fault_events` row, found by its
 * value and client stored side by side (every copy of them: stale ones included). Returns the row's value, or undefined when none is found
 * in the main file.
 */
export function changeStoredRow(dataDir: string, random: Random): string | undefined {
  const path = join(dataDir, 'tandem.db')
  const db = open(dataDir)
  let rows: { value: string; client: string }[]
  try {
    db.exec('PRAGMA wal_checkpoint(TRUNCATE)')
    rows = db.prepare('SELECT value, client FROM fault_events ORDER BY rowid LIMIT 200').all() as typeof rows
  } finally {
    db.close()
  }
  const file = readFileSync(path)
  const start = rows.length === 0 ? 0 : random.int(0, rows.length - 1)
  for (let i = 0; i < rows.length; i++) {
    const row = rows[(start + i) % rows.length]!
    const pattern = Buffer.from(row.value + row.client)
    // Every copy: a page keeps stale copies of cells it moved in its free space, and only one is the row.
    let found = false
    for (let at = file.indexOf(pattern); at >= 0; at = file.indexOf(pattern, at + 1)) {
      const last = at + pattern.length - 1
      file[last] = file[last] === 0x7a ? 0x79 : 0x7a
      found = true
    }
    if (!found) continue
    writeFileSync(path, file)
    return row.value
  }
  return undefined
}
