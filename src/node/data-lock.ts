/**
 * One node per data directory. Two nodes on one directory write one SQLite file and one log
 * with two histories: the second takes writes, and every write to the first fails from then on
 * (UNIQUE constraint on the log's LSN). So a node holds `tandem.lock` in its directory while it
 * runs: the file names its process, and a second node refuses to start while that process lives.
 *
 * A node killed with SIGKILL leaves the file behind: it names a process that is gone (or, its pid
 * reused, one that is not a Tandem node: /proc tells on Linux), and the next node takes it over.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { TandemError } from '../shared/errors.ts'

const lockName = 'tandem.lock'
/** Locks this process holds: a lock file naming this process but not here was left by a start that failed. */
const held = new Set<string>()

export class DataLock {
  private readonly path: string

  private constructor(path: string) {
    this.path = path
  }

  /** Takes the directory's lock (creating the directory), or throws DATA_DIR_IN_USE naming the holder. */
  static take(dataDir: string): DataLock {
    mkdirSync(dataDir, { recursive: true })
    const path = join(dataDir, lockName)
    // Twice at most: once more after removing a stale file (a racing start then finds ours).
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx', 0o600)
        try {
          writeSync(fd, `${process.pid}\n`)
        } finally {
          closeSync(fd)
        }
        held.add(path)
        return new DataLock(path)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      }
      const holder = holderOf(path)
      if (holder !== undefined) {
        throw new TandemError('DATA_DIR_IN_USE', `the data directory ${dataDir} is in use by process ${holder} (a Tandem node): stop that node first, or give this one its own --data`, { pid: holder })
      }
      try {
        unlinkSync(path)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
      }
    }
    throw new TandemError('DATA_DIR_IN_USE', `the data directory ${dataDir} is being taken by another node starting at the same time`)
  }

  /** Lets go of the lock of `dataDir` if this process holds it (a start that failed midway). */
  static releaseHeld(dataDir: string): void {
    const path = join(dataDir, lockName)
    if (held.has(path)) new DataLock(path).release()
  }

  /** Lets the directory go (the node stopped). */
  release(): void {
    held.delete(this.path)
    try {
      if (readFileSync(this.path, 'utf8').trim() === String(process.pid)) unlinkSync(this.path)
    } catch {
      // Gone already.
    }
  }
}

/** The live process the lock file names, or undefined when it names none (stale). */
function holderOf(path: string): number | undefined {
  let pid: number
  try {
    pid = Number(readFileSync(path, 'utf8').trim())
  } catch {
    return undefined
  }
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined
  if (pid === process.pid) return held.has(path) ? pid : undefined
  try {
    process.kill(pid, 0)
  } catch (error) {
    // EPERM: it lives, under another user.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return undefined
  }
  // A reused pid: on Linux, a process that is not node running Tandem is not the holder.
  const cmdline = `/proc/${pid}/cmdline`
  if (existsSync('/proc/self/cmdline')) {
    try {
      const args = readFileSync(cmdline, 'utf8')
      if (!/tandem|node/i.test(args)) return undefined
    } catch {
      return undefined
    }
  }
  return pid
}
