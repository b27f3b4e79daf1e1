/**
 * A small disk for the disk-full scenarios: a tmpfs mounted on a directory (needs root, as CI
 * runs the fault suite), and a filler file that takes every free byte of it.
 */
import { spawnSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// Room for a node's database, its WAL and its log after the filler is gone (8 MiB was too
// tight: a replica's catch-up filled it again, and healing crawled).
const diskSize = '32m'

/** Mounts a tmpfs on `dir`; the error when it cannot. */
export function mount(dir: string): string | undefined {
  const result = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${diskSize}`, 'tmpfs', dir], { encoding: 'utf8' })
  return result.status === 0 ? undefined : (result.stderr || result.error?.message || `mount exited ${result.status}`).trim()
}

export function unmount(dir: string): void {
  spawnSync('umount', ['-l', dir])
}

/** Writes zeros until the file system is full; returns the bytes written. */
export function fill(file: string): number {
  const fd = openSync(file, 'w')
  let written = 0
  try {
    for (const chunk of [1 << 16, 1 << 12, 1 << 9]) {
      const bytes = Buffer.alloc(chunk)
      try {
        for (;;) written += writeSync(fd, bytes)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error
      }
    }
  } finally {
    closeSync(fd)
  }
  return written
}

/** Undefined when this process may mount a tmpfs; else why not. */
export function mountPermitted(): string | undefined {
  const probe = mkdtempSync(join(tmpdir(), 'tandem-mount-probe-'))
  try {
    const error = mount(probe)
    if (error === undefined) unmount(probe)
    return error
  } finally {
    rmSync(probe, { recursive: true, force: true })
  }
}
