/**
 * A master and N replicas as real processes in a temporary directory, for one test file.
 * Waits are bounded: `waitFor` fails the test with the last observation after its deadline.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NodeProcess } from './node-process.ts'
import { checksum, get } from './http.ts'

export class Cluster {
  readonly dir: string
  master!: NodeProcess
  replicas: NodeProcess[] = []
  private replicaCount = 0

  private constructor(dir: string) {
    this.dir = dir
  }

  /** Extra environment for every node this cluster starts. */
  private env: Record<string, string> = {}

  static async start(options: { replicas: number; masterArgs?: string[]; replicaArgs?: string[]; env?: Record<string, string> }): Promise<Cluster> {
    const cluster = new Cluster(mkdtempSync(join(tmpdir(), 'tandem-cluster-')))
    cluster.env = options.env ?? {}
    try {
      cluster.master = await NodeProcess.start({ role: 'master', dataDir: join(cluster.dir, 'master'), args: options.masterArgs ?? [], env: cluster.env })
      for (let i = 0; i < options.replicas; i++) await cluster.addReplica(options.replicaArgs ?? [])
    } catch (error) {
      await cluster.stop()
      throw error
    }
    return cluster
  }

  /** `dataDir` defaults to a new folder in the cluster's directory; `env` adds to the cluster's. */
  async addReplica(args: string[] = [], options: { dataDir?: string; env?: Record<string, string> } = {}): Promise<NodeProcess> {
    const number = ++this.replicaCount
    const replica = await NodeProcess.start({
      role: 'replica',
      dataDir: options.dataDir ?? join(this.dir, `replica${number}`),
      masterUrl: this.master.url,
      args,
      env: { ...this.env, ...options.env },
    })
    this.replicas.push(replica)
    return replica
  }

  /** Every node this cluster started, the first master first; roles may have changed since. */
  get nodes(): NodeProcess[] {
    return [this.master, ...this.replicas]
  }

  /** Waits until every replica has applied the master's newest LSN and holds the same checksum. */
  async converged(timeoutMs = 20_000): Promise<string> {
    let last = ''
    return waitFor(async () => {
      const master = await checksum(this.master.url)
      const sums = await Promise.all(this.replicas.map((r) => checksum(r.url).catch(() => undefined)))
      last = JSON.stringify({ master: { lsn: master.lsn, sum: master.checksum }, replicas: sums.map((s) => s && { lsn: s.lsn, sum: s.checksum }) })
      return sums.every((s) => s !== undefined && s.lsn === master.lsn && s.checksum === master.checksum) ? master.checksum : undefined
    }, timeoutMs, () => `cluster did not converge: ${last}`)
  }

  async status(url: string): Promise<Record<string, unknown>> {
    return (await get(`${url}/status`)).body
  }

  async stop(): Promise<void> {
    await Promise.all([this.master as NodeProcess | undefined, ...this.replicas].map((n) => n?.kill('SIGKILL') ?? Promise.resolve()))
    rmSync(this.dir, { recursive: true, force: true })
  }

  /** The last lines each node logged, for assertion messages. */
  logs(lines = 15): string {
    return [this.master, ...this.replicas].map((n) => `--- ${n.spec.role} ${n.url}\n${n.log.slice(-lines).join('\n')}`).join('\n')
  }
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, describe: () => string = () => 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined) return value
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${describe()} (last error: ${String(error)})`)
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${describe()}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}
