/**
 * One embedded replica per directory. Two replicas applying into one file would each believe
 * its own position and apply the same entries twice: the second would find conflicts, declare
 * divergence and reinstall a snapshot, over and over. Applications easily do this by accident
 * (a worker pool or `cluster` forks, each opening the same path), so opening refuses it.
 *
 * The lock is an exclusive SQLite transaction held open on `embedded.lock` in the directory:
 * SQLite's file locks exclude other connections in this process and in other processes, and the
 * operating system drops them when the process dies, so a crashed application never leaves a
 * stale lock behind (a pid file would, and pids are reused).
 */
import { join } from 'node:path'
import { TandemClientError } from '../client/index.ts'
import { openConnection, type Connection } from '../storage/index.ts'

export class DirectoryLock {
  private readonly connection: Connection

  private constructor(connection: Connection) {
    this.connection = connection
  }

  /** Takes the directory's lock, or throws BAD_REQUEST if another replica holds it. */
  static acquire(dir: string): DirectoryLock {
    const path = join(dir, 'embedded.lock')
    const connection = openConnection(path, { busyTimeoutMs: 0 })
    try {
      connection.exec('BEGIN EXCLUSIVE')
    } catch (error) {
      connection.close()
      throw new TandemClientError('BAD_REQUEST', `${dir} is in use by another embedded replica, in this process or another; give each process its own directory`, { cause: error })
    }
    return new DirectoryLock(connection)
  }

  release(): void {
    if (!this.connection.isOpen) return
    this.connection.exec('ROLLBACK')
    this.connection.close()
  }
}
