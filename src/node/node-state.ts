/**
 * What a node became at run time, kept in its data directory (`node.json`): promoted to master,
 * or told to follow another master. A node never becomes master by itself: a deposed master
 * restarted as `tandem master` comes back as the replica it was told to be (of the master it
 * was told to follow), while a node started as `tandem replica --master URL` is a replica of
 * URL, whatever it was before (a killed master is demoted that way).
 * Written atomically (temporary file, fsync, rename).
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { join } from 'node:path'

export interface NodeState {
  role: 'master' | 'replica'
  /** The master a replica follows. */
  masterUrl?: string
  /** The epoch at the time of the change. */
  epoch: number
  changedAt: string
}

export function loadNodeState(dataDir: string): NodeState | undefined {
  const file = join(dataDir, 'node.json')
  if (!existsSync(file)) return undefined
  return JSON.parse(readFileSync(file, 'utf8')) as NodeState
}

export function saveNodeState(dataDir: string, state: NodeState): void {
  const file = join(dataDir, 'node.json')
  const temporary = `${file}.tmp`
  const fd = openSync(temporary, 'w')
  try {
    writeSync(fd, `${JSON.stringify(state, null, 2)}\n`)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(temporary, file)
  const dir = openSync(dataDir, 'r')
  try {
    fsyncSync(dir)
  } finally {
    closeSync(dir)
  }
}
