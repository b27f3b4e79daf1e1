import { Worker } from 'node:worker_threads'

/** Writes a consistent copy of the database at `source` to `target` (which must not exist). */
export function writeSnapshot(source: string, target: string): Promise<void> {
  const url = new URL(import.meta.url.endsWith('.ts') ? './snapshot-worker.ts' : './snapshot-worker.js', import.meta.url)
  return new Promise((resolve, reject) => {
    const worker = new Worker(url, { workerData: { source, target } })
    let settled = false
    worker.once('message', (message: { ok: boolean; message?: string }) => {
      settled = true
      if (message.ok) resolve()
      else reject(new Error(`snapshot failed: ${message.message}`))
    })
    worker.once('error', (error) => {
      settled = true
      reject(error)
    })
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`snapshot worker exited with code ${code}`))
    })
  })
}
