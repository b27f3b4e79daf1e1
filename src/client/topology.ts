/**
 * Which node is the master, which are replicas and how far behind each is: learned from any
 * node's `GET /nodes?ver=2` (a replica forwards it to its master, or answers with its own view
 * when it cannot), else from `GET /status`. Every known URL is asked at once and the first
 * answer that names a reachable master wins, so one dead or slow node in the list costs nothing.
 *
 * Reads go to the replicas with the least lag (within `lagToleranceMs` of the best), in round
 * robin, then to the other replicas, then to the master. A node that failed a request sits out
 * `cooldownMs` unless nothing else is left.
 *
 * Discovery needs the `status` permission on a node with --auth. A node that refuses it (401 or
 * 403) is not asked again through /status (the same permission): when no node answers, the
 * refusal is what the caller gets, UNAUTHORIZED or FORBIDDEN, saying what to fix.
 */
import type { Clock } from '../shared/clock.ts'
import { TandemClientError, errorFromResponse, isAccessRefusal } from './client-errors.ts'
import type { Transport } from './http-transport.ts'
import { parseJson } from './json-codec.ts'

export interface ReplicaView {
  id: string
  url: string
  reachable: boolean
  appliedLsn: number
  lagEntries: number
  lagMs: number
}

export interface TopologyView {
  /** The master's URL, when known. */
  master: string | undefined
  replicas: ReplicaView[]
  /** When the topology was last learned from a node (ms since the Unix epoch). */
  refreshedAt: number | undefined
}

export interface TopologyOptions {
  seeds: readonly string[]
  transport: Transport
  clock: Clock
  /** Each discovery gives up after this long. */
  discoveryTimeoutMs: number
  /** A failed node is skipped this long. */
  cooldownMs: number
  lagToleranceMs: number
}

/** What one node said about the cluster. */
interface Observation {
  from: string
  master: string | undefined
  isMasterReachable: boolean
  replicas: ReplicaView[]
  /** The epoch the master serves, when the node said. */
  epoch?: number
}

const knownUrlsMax = 64

export class Topology {
  private readonly options: TopologyOptions
  private readonly known: string[]
  private view: TopologyView = { master: undefined, replicas: [], refreshedAt: undefined }
  private readonly downUntil = new Map<string, number>()
  private discovery: Promise<TopologyView> | undefined
  private readonly closing = new AbortController()
  private roundRobin = 0

  constructor(options: TopologyOptions) {
    this.options = options
    this.known = [...new Set(options.seeds.map(normalizeUrl))]
  }

  snapshot(): TopologyView {
    return { master: this.view.master, replicas: this.view.replicas.map((r) => ({ ...r })), refreshedAt: this.view.refreshedAt }
  }

  /** The master's URL, discovering the topology first when it is unknown. */
  async master(signal: AbortSignal): Promise<string> {
    if (this.view.master === undefined || this.isCoolingDown(this.view.master)) await raceSignal(this.refresh(), signal)
    const master = this.view.master
    if (master === undefined) throw new TandemClientError('NO_MASTER', `no node knows a master (asked ${this.known.join(', ')})`)
    return master
  }

  /** Nodes to try for a read, best first. */
  readOrder(target: 'replicas' | 'master'): string[] {
    const master = this.view.master
    if (target === 'master') return master === undefined ? [] : [master]
    const candidates = this.view.replicas.filter((r) => r.reachable && r.url !== master)
    const healthy = candidates.filter((r) => !this.isCoolingDown(r.url)).sort(byLag)
    const order: string[] = []
    if (healthy.length > 0) {
      const bestLagMs = healthy[0]!.lagMs
      const best = healthy.filter((r) => r.lagMs <= bestLagMs + this.options.lagToleranceMs)
      const start = this.roundRobin++ % best.length
      for (let i = 0; i < best.length; i++) order.push(best[(start + i) % best.length]!.url)
      for (const r of healthy.slice(best.length)) order.push(r.url)
    }
    if (master !== undefined) order.push(master)
    // Cooling nodes come last: better a node that failed a moment ago than no node at all.
    for (const r of candidates) if (!order.includes(r.url)) order.push(r.url)
    return order
  }

  /** A node failed a request: skip it for a while and learn the topology again. */
  reportFailure(url: string): void {
    this.downUntil.set(url, this.options.clock.now() + this.options.cooldownMs)
    this.refreshInBackground()
  }

  reportSuccess(url: string): void {
    this.downUntil.delete(url)
  }

  /** A node said the master is elsewhere (a 301 Location or NOT_MASTER's `master`). */
  redirectMaster(url: string | undefined): void {
    if (url !== undefined && url !== '') {
      const master = normalizeUrl(url)
      this.learn([master])
      this.view = { ...this.view, master, replicas: this.view.replicas.filter((r) => r.url !== master) }
      this.downUntil.delete(master)
    } else {
      this.view = { ...this.view, master: undefined }
    }
    this.refreshInBackground()
  }

  refreshInBackground(): void {
    this.refresh().catch(() => {
      // Kept for the next call that needs a master; it will report the failure.
    })
  }

  /** Learns the topology from the known nodes; concurrent callers share one discovery. */
  refresh(): Promise<TopologyView> {
    if (this.closing.signal.aborted) return Promise.reject(new TandemClientError('CLOSED', 'the client is closed'))
    this.discovery ??= this.discover().finally(() => (this.discovery = undefined))
    return this.discovery
  }

  close(): void {
    this.closing.abort(new TandemClientError('CLOSED', 'the client is closed'))
  }

  private async discover(): Promise<TopologyView> {
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(new Error(`no answer within ${this.options.discoveryTimeoutMs} ms`)), this.options.discoveryTimeoutMs)
    const onClose = () => controller.abort(this.closing.signal.reason)
    this.closing.signal.addEventListener('abort', onClose, { once: true })
    try {
      const observation = await firstGood(this.known.map((url) => this.observe(url, controller.signal)))
      this.learn([...(observation.master === undefined ? [] : [observation.master]), ...observation.replicas.map((r) => r.url)])
      this.view = { master: observation.master, replicas: observation.replicas, refreshedAt: this.options.clock.now() }
      return this.snapshot()
    } catch (error) {
      if (this.closing.signal.aborted) throw reasonOf(this.closing.signal)
      const refusal = error instanceof AggregateError ? error.errors.find(isAccessRefusal) : undefined
      if (refusal !== undefined) throw discoveryRefused(refusal)
      throw new TandemClientError('UNAVAILABLE', `could not learn the topology from ${this.known.join(', ')}: ${describeFailures(error)}`, { cause: error })
    } finally {
      clearTimeout(timer)
      controller.abort()
      this.closing.signal.removeEventListener('abort', onClose)
    }
  }

  private async observe(url: string, signal: AbortSignal): Promise<Observation> {
    const nodes = await this.options.transport.send({ method: 'GET', node: url, path: '/nodes?ver=2', signal })
    if (nodes.status === 401 || nodes.status === 403) throw errorFromResponse(nodes.status, parseOrUndefined(nodes.body), url)
    if (nodes.status === 200) {
      const observation = fromNodes(url, parseJson(nodes.body))
      if (observation !== undefined) return observation
    }
    const status = await this.options.transport.send({ method: 'GET', node: url, path: '/status', signal })
    const observation = status.status === 200 ? fromStatus(url, parseJson(status.body)) : undefined
    if (observation === undefined) throw new Error(`${url} answered /nodes with HTTP ${nodes.status} and /status with HTTP ${status.status}`)
    return observation
  }

  private learn(urls: string[]): void {
    for (const url of urls) {
      if (url === '' || this.known.includes(url)) continue
      if (this.known.length >= knownUrlsMax) this.known.splice(this.options.seeds.length, 1)
      this.known.push(url)
    }
  }

  private isCoolingDown(url: string): boolean {
    const until = this.downUntil.get(url)
    return until !== undefined && until > this.options.clock.now()
  }
}

/** A node's 401 or 403 to discovery, with what the user must change. */
function discoveryRefused(refusal: TandemClientError): TandemClientError {
  const advice =
    refusal.code === 'UNAUTHORIZED'
      ? 'give the credentials of a user in the nodes\' --auth file (connect(urls, { auth: { username, password } }), or user:password@ in the URL); discovering the topology needs the status permission'
      : 'the client learns the topology from GET /nodes, which needs the status permission: give this user status, or connect as a user who has it'
  return new TandemClientError(refusal.code, `${refusal.node ?? 'the node'} refused to tell the topology: ${refusal.message}; ${advice}`, {
    ...(refusal.status === undefined ? {} : { status: refusal.status }),
    ...(refusal.node === undefined ? {} : { node: refusal.node }),
    cause: refusal,
  })
}

function parseOrUndefined(text: string): unknown {
  try {
    return parseJson(text)
  } catch {
    return undefined
  }
}

function byLag(a: ReplicaView, b: ReplicaView): number {
  return a.lagMs - b.lagMs || a.lagEntries - b.lagEntries
}

/**
 * The observation to trust: among those naming a reachable master, the one whose master serves
 * the highest epoch (a deposed master still running names itself; the promoted one is newer);
 * else the first naming any master. It waits for every answer, but no longer than
 * `graceMs` after the first good one, so one slow node costs little.
 */
function firstGood(probes: Promise<Observation>[], graceMs = 150): Promise<Observation> {
  return new Promise((resolve, reject) => {
    let pending = probes.length
    let best: Observation | undefined
    let fallback: Observation | undefined
    let timer: NodeJS.Timeout | undefined
    let settled = false
    const errors: unknown[] = []
    const finish = () => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      const chosen = best ?? fallback
      if (chosen !== undefined) resolve(chosen)
      else reject(new AggregateError(errors, 'no node answered'))
    }
    const done = () => {
      if (--pending === 0) finish()
    }
    if (pending === 0) return reject(new AggregateError([], 'no node to ask'))
    for (const probe of probes) {
      probe.then(
        (observation) => {
          if (observation.master !== undefined && observation.isMasterReachable) {
            if (best === undefined || (observation.epoch ?? 0) > (best.epoch ?? 0)) best = observation
            timer ??= setTimeout(finish, graceMs)
          } else if (fallback === undefined && observation.master !== undefined) fallback = observation
          done()
        },
        (error: unknown) => {
          errors.push(error)
          done()
        },
      )
    }
  })
}

function fromNodes(from: string, body: unknown): Observation | undefined {
  const nodes = (body as { nodes?: unknown } | null)?.nodes
  if (!Array.isArray(nodes)) return undefined
  let master: string | undefined
  let epoch: number | undefined
  let isMasterReachable = false
  const replicas: ReplicaView[] = []
  for (const raw of nodes as Record<string, unknown>[]) {
    const url = typeof raw['api_addr'] === 'string' ? normalizeUrl(raw['api_addr']) : ''
    // Embedded replicas (embedded://…) live inside applications and serve no HTTP.
    if (url === '' || !/^https?:/.test(url)) continue
    const reachable = raw['reachable'] !== false
    if (raw['role'] === 'master' || (raw['role'] === undefined && raw['leader'] === true)) {
      // A deposed master (a newer epoch exists) takes no writes: it is no master to use.
      if (raw['deposed'] === true) continue
      master = url
      epoch = typeof raw['epoch'] === 'number' ? raw['epoch'] : undefined
      isMasterReachable = reachable
    } else {
      replicas.push({ id: typeof raw['id'] === 'string' ? raw['id'] : url, url, reachable, appliedLsn: num(raw['applied_lsn']), lagEntries: num(raw['lag_entries']), lagMs: num(raw['lag_ms']) })
    }
  }
  return { from, master, isMasterReachable, replicas, ...(epoch === undefined ? {} : { epoch }) }
}

function fromStatus(from: string, body: unknown): Observation | undefined {
  const status = body as { role?: unknown; replication?: { master_url?: unknown; state?: unknown } } | null
  if (status?.role === 'master') return { from, master: from, isMasterReachable: true, replicas: [] }
  const masterUrl = status?.replication?.master_url
  if (status?.role === 'replica' && typeof masterUrl === 'string') {
    const self: ReplicaView = { id: from, url: from, reachable: true, appliedLsn: 0, lagEntries: 0, lagMs: 0 }
    return { from, master: normalizeUrl(masterUrl), isMasterReachable: status.replication?.state === 'streaming', replicas: [self] }
  }
  return undefined
}

function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0
}

/** `http://host:port` with no trailing slash, so one node has one spelling. */
export function normalizeUrl(url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.protocol}//${parsed.host}${parsed.pathname.replace(/\/+$/, '')}`
  } catch {
    throw new TandemClientError('BAD_REQUEST', `not a node URL: '${url}' (expected e.g. http://127.0.0.1:4001)`)
  }
}

/** Waits for `promise`, or rejects as soon as `signal` aborts (the promise itself runs on). */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(reasonOf(signal))
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(reasonOf(signal))
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error: Error) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}

/** Why a signal aborted, as an Error. */
export function reasonOf(signal: AbortSignal): Error {
  const reason: unknown = signal.reason
  return reason instanceof Error ? reason : new Error(String(reason))
}

function describeFailures(error: unknown): string {
  if (error instanceof AggregateError) return error.errors.length === 0 ? error.message : error.errors.map((e) => (e instanceof Error ? e.message : String(e))).join('; ')
  return error instanceof Error ? error.message : String(error)
}
