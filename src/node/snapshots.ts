/**
 * Consistent copies of this node's database, for bootstrapping replicas and for /db/backup.
 * Each is written by VACUUM INTO in a worker thread (see storage/snapshot-worker.ts), streamed
 * from a temporary file, and deleted once sent. At most two at a time: each costs a full copy.
 */
import { createReadStream, mkdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { TandemError } from '../shared/errors.ts'
import { LogStore } from '../replication-log/log-store.ts'
import { openConnection, writeSnapshot } from '../storage/index.ts'
import type { Snapshot } from '../http-api/node-api.ts'

const concurrentMax = 2

export class Snapshots {
  private readonly dbPath: string
  private readonly dir: string
  private inFlight = 0

  constructor(dbPath: string, dir: string) {
    this.dbPath = dbPath
    this.dir = dir
    // Leftovers of a crash are useless: a snapshot is only valid while it is being sent.
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
  }

  async take(): Promise<Snapshot> {
    if (this.inFlight >= concurrentMax) throw new TandemError('OVERLOADED', `${concurrentMax} snapshots are already being served; retry shortly`)
    this.inFlight++
    const file = join(this.dir, `snapshot-${Date.now()}-${Math.random().toString(36).slice(2)}.db`)
    let released = false
    const release = () => {
      if (released) return
      released = true
      this.inFlight--
      rmSync(file, { force: true })
    }
    try {
      await writeSnapshot(this.dbPath, file)
      // The position is read from the copy itself, so it is exactly the copy's.
      const copy = openConnection(file, { readOnly: true })
      const position = new LogStore(copy).position()
      copy.close()
      const bytes = statSync(file).size
      const stream = createReadStream(file)
      stream.once('close', release)
      stream.once('error', release)
      return { stream, lsn: position.lsn, epoch: position.epoch, bytes }
    } catch (error) {
      release()
      throw error
    }
  }
}
