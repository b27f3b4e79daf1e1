/**
 * Follows the master: connects, says where it is, applies the entries it is sent, acknowledges
 * them, and reconnects with backoff when the connection drops. When the master cannot serve its
 * position, or applying finds a conflict (divergence), it bootstraps from a snapshot and resumes
 * streaming from the snapshot's position.
 */
import { tandemVersion } from '../shared/version.ts'
import { WebSocket } from 'ws'
import { EventEmitter } from 'node:events'
import type { Clock } from '../shared/clock.ts'
import { isTandemError, messageOf } from '../shared/errors.ts'
import type { Logger } from '../shared/logger.ts'
import { frameBytesMax } from '../shared/limits.ts'
import { backoffMs, sleep } from '../shared/wait.ts'
import type { LogEntry } from '../replication-log/log-entry.ts'
import { decodeEntries, parseMasterMessage, protocolVersion, type MasterMessage, type ReplicaMessage } from '../protocol/messages.ts'
import { FrameSocket } from '../transport/frame-socket.ts'
import type { ClusterId, PeerCredentials } from '../security/index.ts'
import type { Applier } from './applier.ts'
import { ApplyLag } from './apply-lag.ts'
import { DurableAcks } from './durable-acks.ts'

/** `fenced`: the master it was pointed at has a lower epoch than one this replica knows. */
export type FollowerState = 'connecting' | 'streaming' | 'snapshotting' | 'diverged' | 'fenced' | 'stopped'

export interface FollowerOptions {
  nodeId: string
  /** This replica's own HTTP URL, told to the master for /nodes (known once it listens). */
  url: () => string
  masterUrl: string
  clock: Clock
  logger: Logger
  applier: () => Applier
  /**
   * Downloads a snapshot of the master and installs it in place of the local database. With
   * `forkLsn`, the local entries after it are not in the master's history: keep them for the
   * operator before they are replaced.
   */
  bootstrap: (reason: string, forkLsn: number | undefined) => Promise<void>
  /** Epoch checks; off only for the fault suite's negative control. */
  fencing: boolean
  /** What this replica presents to its master: the cluster secret's token or a user's credentials, and TLS. */
  peers?: PeerCredentials
  /** This replica's cluster: adopted from the first master it meets, then required of every master. */
  cluster?: ClusterId
  reconnectBaseMs: number
  reconnectCapMs: number
  silenceMsMax: number
  applyEntriesMax: number
  /** Apply each entry no earlier than this long after it arrived (a delayed replica); 0: at once. */
  applyDelayMs: number
  /**
   * Makes what was applied durable (an fdatasync of the WAL, off the event loop), when applying
   * does not sync by itself. Acknowledgements then wait for it: an ack always means durable.
   */
  flush?: () => Promise<void>
  /**
   * With `flush`: how long applied entries may wait for their sync when no write on the master
   * waits for this replica (the master sends `flush` when one does). One sync then covers every
   * batch applied meanwhile. 0: sync after every batch.
   */
  flushDelayMs?: number
  /** Largest frame taken from the master (shared/limits.ts); the test suite lowers it. */
  frameBytesMax?: number
}

type Outcome = { kind: 'snapshot'; reason: string; forkLsn?: number } | { kind: 'streamed' | 'failed'; reason: string }

/** The master's job messages, handed to the executor. */
export type JobMessage = Extract<MasterMessage, { type: 'assign' | 'cancel' | 'recorded' }>

export class Follower extends EventEmitter<{ applied: [lsn: number]; state: [FollowerState]; welcome: []; job: [JobMessage]; refused: [code: string] }> {
  state: FollowerState = 'connecting'
  /** The master's newest LSN, as last heard. */
  masterLsn = 0
  /** The master's commit time of masterLsn on the master's clock, as last heard. */
  masterTime = 0
  /** When this replica last heard from its master (local clock), 0 if never. */
  lastContactAt = 0
  /** Why the replica last bootstrapped or diverged. */
  lastProblem: string | undefined
  /** Commit time (master clock) of the newest applied entry. */
  appliedTime = 0
  snapshotsInstalled = 0
  /** The other replicas' URLs, as the master last listed them (whom to tell after a promotion). */
  peers: string[] = []
  /** The master's epoch, as it said. */
  masterEpoch = 0
  /** Commit on the master → visible here, per entry applied. */
  readonly applyLag = new ApplyLag()
  /** What acknowledgements report: the newest LSN durable here. */
  private readonly acks: DurableAcks<FrameSocket>
  private readonly options: FollowerOptions
  private socket: FrameSocket | undefined
  private stopped = false
  private queue: { entry: LogEntry; receivedAt: number }[] = []
  private applyScheduled = false
  private delayTimer: NodeJS.Timeout | undefined
  private receivedLsn = 0
  /** Apply failures (not divergence) during the current connection. */
  private applyFailures = 0
  /**
   * Why the last batch of entries could not be applied (a full disk, an I/O error), until one is:
   * the replica is not ready meanwhile, whatever its connection's state.
   */
  applyFailure: string | undefined
  /** The stream position at which a frame last failed to decode, and how many times in a row. */
  private undecodable = { lsn: -1, count: 0 }
  private running: Promise<void> | undefined
  /** Aborted by stop(), so a backoff sleep does not hold it up. */
  private readonly stopping = new AbortController()

  constructor(options: FollowerOptions) {
    super()
    this.options = options
    this.acks = new DurableAcks({
      appliedLsn: () => this.options.applier().position.lsn,
      flush: options.flush,
      flushDelayMs: options.flushDelayMs ?? 0,
      connection: () => this.socket,
      send: (socket, lsn) => socket.sendJson({ type: 'ack', lsn } satisfies ReplicaMessage),
      failed: (socket, error) => {
        // Not durable: acknowledge nothing, and reconnect (with backoff) as for a failed apply.
        this.applyFailures++
        this.options.logger.error({ err: error }, 'could not sync the WAL; reconnecting')
        socket?.terminate()
      },
    })
  }

  /** The newest LSN known durable here: what acknowledgements report. Invariant: <= the applied position. */
  get durableLsn(): number {
    return this.acks.durableLsn
  }

  /** `resyncFirst`: the local log failed its checks at start; bootstrap before streaming. */
  start(resyncFirst?: string): void {
    this.running = this.run(resyncFirst)
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.stopping.abort()
    clearTimeout(this.delayTimer)
    this.acks.stop()
    // Terminate, not close: a close handshake with a paused or cut-off master waits 30 s.
    this.socket?.terminate()
    this.setState('stopped')
    await this.running
  }

  private setState(state: FollowerState): void {
    if (this.state === state) return
    this.state = state
    this.emit('state', state)
  }

  private async run(resyncFirst: string | undefined): Promise<void> {
    if (resyncFirst !== undefined) await this.bootstrapWithRetry(resyncFirst, undefined)
    let attempt = 0
    while (!this.stopped) {
      // The master counts the position in hello as acknowledged: make it durable first.
      await this.options.flush?.().catch((error: unknown) => this.options.logger.error({ err: error }, 'could not sync the WAL'))
      this.acks.markDurable()
      const outcome = await this.followOnce()
      if (this.stopped) break
      if (outcome.kind === 'snapshot') {
        await this.bootstrapWithRetry(outcome.reason, outcome.forkLsn)
        attempt = 0
        continue
      }
      // A connection that never got its welcome (refused, a TLS handshake that failed, no
      // master): say why in /status, not only in the log.
      if (outcome.kind === 'failed' && this.state === 'connecting' && this.lastProblem !== outcome.reason) this.lastProblem = `cannot follow ${this.options.masterUrl}: ${outcome.reason}`
      if (outcome.kind === 'streamed' && this.applyFailures === 0) attempt = 0
      this.applyFailures = 0
      const delay = backoffMs(attempt++, this.options.reconnectBaseMs, this.options.reconnectCapMs)
      this.options.logger.info({ reason: outcome.reason, retryInMs: delay }, 'replication connection ended; reconnecting')
      await sleep(delay, this.stopping.signal).catch(() => undefined)
    }
  }

  private async bootstrapWithRetry(reason: string, forkLsn: number | undefined): Promise<void> {
    let attempt = 0
    this.setState('snapshotting')
    this.lastProblem = reason
    while (!this.stopped) {
      try {
        this.options.logger.warn({ reason }, 'bootstrapping from a snapshot of the master')
        await this.options.bootstrap(reason, forkLsn)
        this.snapshotsInstalled++
        this.options.logger.info({ position: this.options.applier().position }, 'snapshot installed')
        return
      } catch (error) {
        const delay = backoffMs(attempt++, this.options.reconnectBaseMs, this.options.reconnectCapMs)
        this.options.logger.error({ err: error, retryInMs: delay }, 'snapshot failed')
        await sleep(delay, this.stopping.signal).catch(() => undefined)
      }
    }
  }

  /** One connection's life. */
  private followOnce(): Promise<Outcome> {
    this.setState('connecting')
    const wsUrl = `${this.options.masterUrl.replace(/^http/, 'ws')}/replication`
    const applier = this.options.applier()
    this.queue = []
    this.receivedLsn = applier.position.lsn
    return new Promise((resolve) => {
      let outcome: Outcome = { kind: 'failed', reason: 'connection closed' }
      const knownEpoch = applier.store.epoch()
      /** Fencing: a master older than an epoch this replica knows is deposed; never follow it. */
      const isDeposed = (epoch: number) => this.options.fencing && epoch < knownEpoch
      const ws = new WebSocket(wsUrl, { handshakeTimeout: 5000, maxPayload: this.options.frameBytesMax ?? frameBytesMax, ...this.options.peers?.webSocketOptions() })
      /** Why the master refused this replica (wrong secret, permissions, another cluster): kept for /status. */
      const refused = (reason: string) => {
        outcome = { kind: 'failed', reason }
        if (this.lastProblem !== reason) this.options.logger.error({ master: this.options.masterUrl }, reason)
        this.lastProblem = reason
      }
      ws.on('unexpected-response', (_request, response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('end', () => {
          let text = Buffer.concat(chunks).toString('utf8')
          try {
            text = (JSON.parse(text) as { error?: string }).error ?? text
          } catch {
            // Not JSON: the text as it came.
          }
          refused(`the master at ${this.options.masterUrl} refused this replica: HTTP ${response.statusCode ?? '?'}: ${text.slice(0, 300)}`)
          ws.terminate()
        })
      })
      const frames = new FrameSocket(ws, { bufferedBytesMax: 1 << 20, silenceMsMax: this.options.silenceMsMax })
      this.socket = frames
      ws.on('open', () => {
        frames.sendJson({
          type: 'hello',
          version: protocolVersion,
          nodeId: this.options.nodeId,
          url: this.options.url(),
          position: applier.position,
          marks: applier.store.marks(),
          knownEpoch,
          release: tandemVersion,
          ...(this.options.cluster?.value === undefined ? {} : { clusterId: this.options.cluster.value }),
        } satisfies ReplicaMessage)
      })
      ws.on('message', (data: Buffer, isBinary) => {
        try {
          if (this.state === 'fenced') return
          this.lastContactAt = this.options.clock.now()
          if (isBinary) {
            try {
              this.receive(decodeEntries(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)))
            } catch (error) {
              outcome = this.unreceivable(`a frame after entry ${this.receivedLsn} could not be decoded: ${messageOf(error)}`)
              frames.terminate()
            }
            return
          }
          const message = parseMasterMessage(String(data))
          switch (message.type) {
            case 'welcome':
              if (isDeposed(message.epoch)) {
                this.fence(frames, message.epoch, knownEpoch)
                outcome = { kind: 'failed', reason: `the master's epoch ${message.epoch} is older than ${knownEpoch}` }
                break
              }
              try {
                this.options.cluster?.adopt(message.clusterId, `the master at ${this.options.masterUrl}`)
              } catch (error) {
                refused(messageOf(error))
                frames.close(1008, 'another cluster')
                break
              }
              this.masterEpoch = message.epoch
              this.peers = message.replicas.filter((url) => url !== this.options.url())
              this.masterLsn = message.lsn
              this.masterTime = message.time
              outcome = { kind: 'streamed', reason: 'connection closed' }
              this.setState('streaming')
              this.emit('welcome')
              break
            case 'heartbeat':
              if (isDeposed(message.epoch)) {
                this.fence(frames, message.epoch, knownEpoch)
                break
              }
              this.masterLsn = Math.max(this.masterLsn, message.lsn)
              this.masterTime = message.time
              this.peers = message.replicas.filter((url) => url !== this.options.url())
              // Answer every heartbeat: the master counts a replica as alive and caught up from
              // its acknowledgements (min-replicas), even when there is nothing new to apply.
              frames.sendJson({ type: 'ack', lsn: this.durableLsn } satisfies ReplicaMessage)
              break
            case 'snapshot':
              outcome = { kind: 'snapshot', reason: message.reason, ...(message.forkLsn === undefined ? {} : { forkLsn: message.forkLsn }) }
              frames.close()
              break
            case 'refuse':
              if (message.code === 'CLUSTER_MISMATCH' || message.code === 'FORBIDDEN') refused(`${message.code}: ${message.message}`)
              outcome = { kind: 'failed', reason: `${message.code}: ${message.message}` }
              frames.close()
              // NOT_MASTER: the URL is a replica's. The follower retries it (it may be promoted);
              // whoever opened it may rather say so at once.
              this.emit('refused', message.code)
              break
            case 'confirm':
              frames.sendJson({ type: 'confirmed', id: message.id, epoch: Math.max(message.epoch, this.options.applier().position.epoch) } satisfies ReplicaMessage)
              break
            case 'ping':
              break
            case 'flush':
              this.acks.ask(message.lsn)
              break
            case 'assign':
            case 'cancel':
            case 'recorded':
              this.emit('job', message)
              break
          }
        } catch (error) {
          outcome = { kind: 'failed', reason: messageOf(error) }
          frames.terminate()
        }
      })
      ws.on('error', (error) => {
        if ((error as { code?: unknown }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
          outcome = this.unreceivable(`a frame after entry ${this.receivedLsn} is larger than this replica takes (${this.options.frameBytesMax ?? frameBytesMax} bytes)`, true)
          return
        }
        if (outcome.kind === 'failed' && this.lastProblem === outcome.reason) return
        outcome = { kind: outcome.kind === 'snapshot' ? 'snapshot' : 'failed', reason: messageOf(error) }
      })
      ws.on('close', () => {
        this.socket = undefined
        // Entries still queued were received from this master and are valid: apply those that
        // are due. Any others are streamed again after reconnecting.
        this.applyQueued()
        this.queue = []
        if (this.state === 'diverged') outcome = { kind: 'snapshot', reason: this.lastProblem ?? 'diverged' }
        resolve(outcome)
      })
    })
  }

  /**
   * A frame this replica cannot take. Reconnecting would be sent the same frame again, for ever,
   * while the replica looked healthy: so a frame too large at once, and one that fails to decode
   * twice at the same position, sends the replica to a snapshot, which starts it past the entry.
   */
  private unreceivable(reason: string, isFinal = false): Outcome {
    const lsn = this.receivedLsn
    this.undecodable = { lsn, count: this.undecodable.lsn === lsn ? this.undecodable.count + 1 : 1 }
    if (!isFinal && this.undecodable.count < 2) {
      this.options.logger.error({ lsn }, `${reason}; reconnecting`)
      return { kind: 'failed', reason }
    }
    this.undecodable = { lsn: -1, count: 0 }
    const problem = `${reason}: this replica cannot receive the stream past entry ${lsn}; resyncing from a snapshot`
    this.lastProblem = problem
    this.options.logger.error({ lsn, master: this.options.masterUrl }, problem)
    return { kind: 'snapshot', reason: problem }
  }

  /** Sends a message to the master on the current connection; false when there is none. */
  send(message: ReplicaMessage): boolean {
    if (this.socket === undefined || this.state !== 'streaming') return false
    this.socket.sendJson(message)
    return true
  }

  /**
   * A promotion to `epoch` is under way: stop following a master older than it, now, and drop
   * what it sent but was not applied yet, so this replica's position stays where it is while
   * the promotion compares positions (and it acknowledges nothing more to the old master).
   */
  fenceBelow(epoch: number): void {
    if (!this.options.fencing || this.socket === undefined || this.masterEpoch >= epoch) return
    this.fence(this.socket, this.masterEpoch, epoch)
  }

  private fence(frames: FrameSocket, masterEpoch: number, knownEpoch: number): void {
    this.lastProblem = `the master at ${this.options.masterUrl} serves epoch ${masterEpoch}, older than epoch ${knownEpoch} this replica knows: it was deposed; point this replica at the new master`
    this.options.logger.error({ masterEpoch, knownEpoch }, 'refusing a deposed master')
    this.queue = []
    this.setState('fenced')
    frames.terminate()
  }

  private receive(entries: LogEntry[]): void {
    for (const entry of entries) {
      if (entry.lsn !== this.receivedLsn + 1) {
        throw new Error(`stream gap: expected entry ${this.receivedLsn + 1}, received ${entry.lsn}`)
      }
      this.receivedLsn = entry.lsn
      this.queue.push({ entry, receivedAt: this.options.clock.now() })
    }
    this.masterLsn = Math.max(this.masterLsn, this.receivedLsn)
    this.scheduleApply()
  }

  private scheduleApply(): void {
    if (this.applyScheduled) return
    this.applyScheduled = true
    setImmediate(() => {
      this.applyScheduled = false
      this.applyQueued()
    })
  }

  /** How many queued entries are due, given the apply delay. */
  private dueCount(): number {
    if (this.options.applyDelayMs <= 0) return this.queue.length
    const now = this.options.clock.now()
    let due = 0
    while (due < this.queue.length && this.queue[due]!.receivedAt + this.options.applyDelayMs <= now) due++
    if (due < this.queue.length && this.delayTimer === undefined) {
      const wait = this.queue[due]!.receivedAt + this.options.applyDelayMs - now
      this.delayTimer = setTimeout(() => {
        this.delayTimer = undefined
        this.scheduleApply()
      }, Math.max(1, wait))
    }
    return due
  }

  /** Applies everything queued in batches of one transaction each, then acknowledges. */
  private applyQueued(): void {
    const applier = this.options.applier()
    for (;;) {
      const due = this.dueCount()
      if (due === 0 || this.state === 'diverged') return
      const batch = this.queue.splice(0, Math.min(due, this.options.applyEntriesMax)).map((q) => q.entry)
      try {
        applier.applyBatch(batch)
      } catch (error) {
        this.queue = []
        if (isTandemError(error, 'REPLICA_DIVERGED')) {
          this.lastProblem = messageOf(error)
          if (error.details?.['loaded'] === true) this.options.logger.info({ lsn: error.details['lsn'] }, 'the master loaded a whole database: this replica copies it')
          else this.options.logger.error({ err: error }, 'divergence: this replica stops applying and will resync from a snapshot')
          this.setState('diverged')
        } else {
          // A full disk, an I/O error: back off instead of reconnecting at once, again and again.
          this.applyFailures++
          this.applyFailure = `cannot apply entries ${batch[0]!.lsn}–${batch[batch.length - 1]!.lsn}: ${messageOf(error)}`
          this.lastProblem = this.applyFailure
          this.options.logger.error({ err: error }, 'apply failed; reconnecting')
        }
        this.socket?.terminate()
        return
      }
      const last = batch[batch.length - 1]!
      this.applyFailure = undefined
      this.appliedTime = last.time
      const appliedAt = this.options.clock.now()
      for (const entry of batch) this.applyLag.record(appliedAt, entry.time)
      this.emit('applied', last.lsn)
      this.acks.applied()
    }
  }
}
