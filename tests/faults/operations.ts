/**
 * What every workload client does, whichever way it talks to the cluster: the schema, the two
 * statements of a write, the read of a register, and the pause between operations.
 */
import type { Random } from './seeded-random.ts'

export const schema = [
  'CREATE TABLE IF NOT EXISTS fault_events (value TEXT PRIMARY KEY, client TEXT NOT NULL, seq INTEGER NOT NULL, key TEXT NOT NULL, pad BLOB)',
  'CREATE TABLE IF NOT EXISTS fault_registers (key TEXT PRIMARY KEY, value TEXT NOT NULL)',
]

export interface WorkloadSettings {
  keys: number
  sync: number | undefined
  syncTimeoutMs: number
  padBytes: number
  readRatio: number
  opTimeoutMs: number
  thinkMs: number
}

/** One client's loop. */
export interface WorkloadProcess {
  readonly id: string
  run(stopping: AbortSignal): Promise<void>
}

/** The two statements of one write, as rqlite's JSON body. */
export function writeStatements(client: string, seq: number, key: string, padBytes: number): [string, ...unknown[]][] {
  const value = `${client}:${seq}`
  const insert: [string, ...unknown[]] =
    padBytes > 0
      ? ['INSERT INTO fault_events(value, client, seq, key, pad) VALUES (?, ?, ?, ?, randomblob(?))', value, client, seq, key, padBytes]
      : ['INSERT INTO fault_events(value, client, seq, key) VALUES (?, ?, ?, ?)', value, client, seq, key]
  return [insert, ['INSERT INTO fault_registers(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value', key, value]]
}

export const readRegisterSql = 'SELECT value FROM fault_registers WHERE key = ?'

/** A jittered pause, cut short by stopping. */
export function think(random: Random, ms: number, stopping: AbortSignal): Promise<void> {
  if (stopping.aborted || ms <= 0) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(done, Math.round(ms * (0.5 + random.next())))
    function done() {
      clearTimeout(timer)
      stopping.removeEventListener('abort', done)
      resolve()
    }
    stopping.addEventListener('abort', done, { once: true })
  })
}

/** A client's loop: a random key, a read or a write by the read ratio, a pause; until stopping. */
export async function runOperations(
  random: Random,
  settings: WorkloadSettings,
  stopping: AbortSignal,
  operations: { read(key: string): Promise<void>; write(key: string): Promise<void> },
): Promise<void> {
  while (!stopping.aborted) {
    const key = `k${random.int(0, settings.keys - 1)}`
    if (random.next() < settings.readRatio) await operations.read(key)
    else await operations.write(key)
    await think(random, settings.thinkMs, stopping)
  }
}
