/**
 * Memory that separate processes share: the first bytes of a file mapped with MAP_SHARED
 * (native/shared-memory.c, built by scripts/build-native.js), as an ArrayBuffer. Node has no
 * mmap, and a SharedArrayBuffer reaches threads, not processes. A node's HTTP workers read its
 * state there (src/node/shared-node-state.ts).
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

interface SharedMemoryModule {
  map(path: string, bytes: number): ArrayBuffer
}

const modulePath = fileURLToPath(new URL('../../build/shared-memory.node', import.meta.url))

const native: SharedMemoryModule | undefined = existsSync(modulePath) ? (createRequire(import.meta.url)(modulePath) as SharedMemoryModule) : undefined

/** Why shared memory is missing from this build, or undefined when it is there. */
export const sharedMemoryUnavailable = native === undefined ? `${modulePath} was not built (npm run build needs a C compiler and Node's headers)` : undefined

/** The first `bytes` of the file at `path` (created, mode 0600, or grown to that size), shared with every process that maps it. */
export function mapSharedMemory(path: string, bytes: number): ArrayBuffer {
  if (native === undefined) throw new Error(sharedMemoryUnavailable)
  return native.map(path, bytes)
}
