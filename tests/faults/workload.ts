/**
 * The workload of a fault scenario: concurrent clients that write unique values to a few
 * registers and read them back, each operation recorded in the history.
 *
 * A write is one transaction: it inserts the value into `fault_events` (every value ever
 * written stays there, so lost and phantom writes show in the final rows) and sets the
 * register `fault_registers[key]` to it (so reads can be ordered: read-your-writes, monotonic
 * reads). Values are `<client>:<seq>`, unique in the history.
 *
 * Three kinds of clients:
 * - raw HTTP clients (HttpSession) that follow the master with the highest epoch (MasterView)
 *   and record X-Tandem-Epoch and X-Tandem-Lsn of every answer (`h*`; `w*` only write);
 * - raw HTTP clients pinned to one node, which keep talking to it whatever happens (a client
 *   with a stale view of the cluster, the one a deposed master can fool);
 * - tandem/client sessions (TandemSession), which find the master on their own and report
 *   outcomes through the client's typed errors.
 * Every operation has a deadline; stop() waits for the operations in flight.
 */
import { connect, type TandemClient } from '../../src/client/index.ts'
import type { History } from './history.ts'
import { MasterView } from './master-view.ts'
import type { Random } from './seeded-random.ts'
import { HttpSession } from './http-session.ts'
import { TandemSession } from './tandem-session.ts'
import type { WorkloadProcess, WorkloadSettings } from './operations.ts'

export interface WorkloadOptions {
  history: History
  random: Random
  /** Every node's URL, now (nodes may be added as the scenario goes). */
  nodes: () => readonly string[]
  /** Raw HTTP clients that follow the master with the highest epoch. */
  httpClients: number
  /**
   * Raw HTTP clients that only write (default 1): a client blocked on a slow read does not
   * write, so these keep probing write availability (the unavailability column).
   */
  writers?: number
  /** Raw HTTP clients that only ever talk to this node (asked before every operation). */
  pinned?: { url: () => string; clients: number }
  /** tandem/client sessions. */
  tandemClients: number
  /** Registers. */
  keys?: number
  /** sync=K on every write; undefined: the master's --sync-replicas. */
  sync?: number
  syncTimeoutMs?: number
  /** Random bytes stored with every value (to fill a disk). */
  padBytes?: number
  /** Fraction of operations that are reads. */
  readRatio?: number
  /** Each operation's deadline. */
  opTimeoutMs?: number
  /** Pause between one client's operations (jittered), to leave the cores to the nodes. */
  thinkMs?: number
}

export class Workload {
  readonly view: MasterView
  private readonly options: WorkloadOptions
  private readonly stopping = new AbortController()
  private running: Promise<unknown> | undefined
  private tandem: TandemClient | undefined

  constructor(options: WorkloadOptions) {
    this.options = options
    this.view = new MasterView(options.nodes)
  }

  get settings(): WorkloadSettings {
    const o = this.options
    return {
      keys: o.keys ?? 4,
      sync: o.sync,
      syncTimeoutMs: o.syncTimeoutMs ?? 1500,
      padBytes: o.padBytes ?? 0,
      readRatio: o.readRatio ?? 0.4,
      opTimeoutMs: o.opTimeoutMs ?? 2500,
      thinkMs: o.thinkMs ?? 10,
    }
  }

  /** Starts every client; the history's clock for unavailability starts now. */
  async start(): Promise<void> {
    const { history, random } = this.options
    await this.view.refresh()
    const processes: WorkloadProcess[] = []
    for (let i = 0; i < this.options.httpClients; i++) {
      const id = `h${i}`
      processes.push(new HttpSession(id, { view: this.view, history, random: random.fork(id), settings: this.settings }))
    }
    for (let i = 0; i < (this.options.writers ?? 1); i++) {
      const id = `w${i}`
      processes.push(new HttpSession(id, { view: this.view, history, random: random.fork(id), settings: { ...this.settings, readRatio: 0 } }))
    }
    const pinned = this.options.pinned
    for (let i = 0; pinned !== undefined && i < pinned.clients; i++) {
      const id = `p${i}`
      processes.push(new HttpSession(id, { pinned: pinned.url, view: this.view, history, random: random.fork(id), settings: this.settings }))
    }
    if (this.options.tandemClients > 0) {
      this.tandem = await connect([...this.options.nodes()], { timeoutMs: this.settings.opTimeoutMs, refreshMs: 500, cooldownMs: 300, minLsnTimeoutMs: 1000 })
      for (let i = 0; i < this.options.tandemClients; i++) {
        const id = `t${i}`
        processes.push(new TandemSession(id, { client: this.tandem.withSession(), history, random: random.fork(id), settings: this.settings }))
      }
    }
    history.startedAt = performance.now()
    this.running = Promise.all(processes.map((p) => p.run(this.stopping.signal)))
  }

  /** Stops every client after its operation in flight; the history's clock stops now. */
  async stop(): Promise<void> {
    this.options.history.stoppedAt = performance.now()
    this.stopping.abort()
    await this.running
    this.view.close()
    await this.tandem?.close()
  }
}
