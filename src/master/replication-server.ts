/**
 * Serves the replication stream to replicas (see protocol/messages.ts for the protocol).
 *
 * Each replica gets a session that knows what was sent and what was acknowledged. A session
 * that is caught up receives each entry as soon as it commits (one encoded frame shared by all
 * sessions), or, under a steady stream of commits, at most `lingerMs` later together with the
 * entries committed meanwhile (commit-hold.ts); one that is behind is pumped from the log in
 * bounded batches, waiting for the socket to drain between them, until it is caught up.
 */
import type { IncomingMessage } from 'node:http'
import type { WebSocket } from 'ws'
import type { Clock } from '../shared/clock.ts'
import type { Logger } from '../shared/logger.ts'
import { TandemError, isTandemError, messageOf } from '../shared/errors.ts'
import { hashBytes, type LogEntry } from '../replication-log/log-entry.ts'
import type { LogStore } from '../replication-log/log-store.ts'
import { encodeEntries, parseReplicaMessage, protocolVersion, type MasterMessage, type ReplicaMessage } from '../protocol/messages.ts'
import { isHistory, marksMax, whySnapshot } from './replica-history.ts'
import { FrameSocket } from '../transport/frame-socket.ts'
import { CommitHold } from './commit-hold.ts'
import { ReplicaSession, type ReplicaView } from './replica-session.ts'

export interface ReplicationServerOptions {
  nodeId: string
  /** The cluster this master serves: a replica of another is refused. */
  clusterId: () => string
  /** A log store on a connection of its own (catch-up reads must not see an open write batch). */
  log: LogStore
  lastLsn: () => number
  epoch: () => number
  clock: Clock
  logger: Logger
  heartbeatMs: number
  /**
   * An entry committed less than this long after the one before waits until this long after the
   * last frame, so that one frame carries every entry committed meanwhile; 0 sends each at once.
   */
  lingerMs: number
  silenceMsMax: number
  /** A connection that has not said hello this long after it opened is closed. */
  helloTimeoutMs: number
  batchEntriesMax: number
  batchBytesMax: number
  bufferedBytesMax: number
  /** Epoch checks; off only for the fault suite's negative control. */
  fencing: boolean
  /** Called when a replica knows a higher epoch than this master's: it must stop taking writes. */
  onHigherEpoch: (epoch: number, source: string) => void
  /** Job messages (worker, result, progress), acknowledgements (they renew leases), departures. */
  jobs?: {
    receive: (nodeId: string, message: ReplicaMessage) => void
    acked: (nodeId: string) => void
    disconnected: (nodeId: string) => void
  }
}

export class ReplicationServer {
  private readonly sessions = new Map<string, ReplicaSession>()
  private readonly options: ReplicationServerOptions
  private readonly heartbeat: NodeJS.Timeout
  private readonly ackListeners = new Set<() => void>()
  private readonly hold: CommitHold

  constructor(options: ReplicationServerOptions) {
    this.options = options
    this.hold = new CommitHold(options.lingerMs, (entries) => this.stream(entries))
    this.heartbeat = setInterval(() => this.sendHeartbeats(), options.heartbeatMs)
    this.heartbeat.unref()
  }

  /** Takes a WebSocket that asked for /replication. */
  /**
   * Takes a WebSocket that asked for /replication. `isNode`: opened by a node of this cluster;
   * otherwise by a user allowed to read the stream, whose session never raises the epoch, counts
   * for sync, appears in the replica list or runs jobs.
   */
  accept(socket: WebSocket, request: IncomingMessage, caller: { isNode: boolean } = { isNode: true }): void {
    const frames = new FrameSocket(socket, { bufferedBytesMax: this.options.bufferedBytesMax, silenceMsMax: this.options.silenceMsMax })
    const address = `${request.socket.remoteAddress ?? '?'}:${request.socket.remotePort ?? '?'}`
    let session: ReplicaSession | undefined
    // Until its hello, a socket has only cost this master; one that never says it would hold a
    // connection (and its buffers) for as long as its peer likes.
    const helloTimer = setTimeout(() => {
      this.options.logger.warn({ address, helloTimeoutMs: this.options.helloTimeoutMs }, 'closing a replication connection that sent no hello in time')
      frames.terminate()
    }, this.options.helloTimeoutMs)
    helloTimer.unref()
    socket.on('message', (data, isBinary) => {
      try {
        if (isBinary) throw new Error('replicas send no binary frames')
        const message = parseReplicaMessage(Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]).toString('utf8'))
        if (message.type === 'hello') {
          if (session !== undefined) throw new Error('hello sent twice')
          clearTimeout(helloTimer)
          session = this.open(frames, message, address, caller.isNode)
        } else if (message.type === 'confirmed') {
          if (!caller.isNode) throw new Error('only a node of this cluster answers confirm')
          if (this.options.fencing && message.epoch > this.options.epoch()) this.options.onHigherEpoch(message.epoch, `replica ${session?.nodeId ?? address}`)
          this.confirmations.get(message.id)?.(session?.nodeId ?? address, message.epoch)
        } else if (message.type === 'ack') {
          if (session === undefined) throw new Error('ack before hello')
          if (message.lsn > session.ackedLsn && message.lsn <= session.sentLsn) session.ackedLsn = message.lsn
          session.lastAckAt = this.options.clock.now()
          for (const listener of this.ackListeners) listener()
          this.options.jobs?.acked(session.nodeId)
        } else if (message.type === 'worker' || message.type === 'result' || message.type === 'progress') {
          if (session === undefined) throw new Error(`${message.type} before hello`)
          if (!session.isNode) throw new Error('only a node of this cluster runs jobs: give it the cluster secret')
          this.options.jobs?.receive(session.nodeId, message)
        }
      } catch (error) {
        this.options.logger.warn({ err: error, address }, 'closing a replication connection after a bad message')
        frames.sendJson({ type: 'refuse', code: 'PROTOCOL_ERROR', message: messageOf(error) } satisfies MasterMessage)
        frames.close(1002, 'protocol error')
      }
    })
    socket.on('close', () => {
      clearTimeout(helloTimer)
      if (session !== undefined && this.sessions.get(session.nodeId) === session) {
        this.sessions.delete(session.nodeId)
        this.options.jobs?.disconnected(session.nodeId)
        this.options.logger.info({ replica: session.nodeId, ackedLsn: session.ackedLsn }, 'replica disconnected')
      }
    })
    socket.on('error', () => frames.terminate())
  }

  private open(
    frames: FrameSocket,
    hello: Extract<ReplicaMessage, { type: 'hello' }>,
    address: string,
    isNode: boolean,
  ): ReplicaSession | undefined {
    const epoch = this.options.epoch()
    const refuse = (code: string, message: string) => {
      this.options.logger.warn({ replica: hello.nodeId, address, code }, message)
      frames.sendJson({ type: 'refuse', code, message } satisfies MasterMessage)
      frames.close(1008, code)
      return undefined
    }
    if (typeof hello.nodeId !== 'string' || typeof hello.url !== 'string' || typeof hello.knownEpoch !== 'number' || typeof hello.position?.lsn !== 'number') {
      return refuse('PROTOCOL_ERROR', 'hello needs nodeId, url, position and knownEpoch')
    }
    if (hello.release !== undefined && (typeof hello.release !== 'string' || !/^[\w.+-]{1,64}$/.test(hello.release))) {
      return refuse('PROTOCOL_ERROR', "hello's release must be a version of at most 64 characters (letters, digits, . + - _)")
    }
    const clusterId = this.options.clusterId()
    if (hello.clusterId !== undefined && hello.clusterId !== clusterId) {
      return refuse('CLUSTER_MISMATCH', `replica ${hello.nodeId} belongs to cluster ${hello.clusterId}, this master to cluster ${clusterId}: it is not served`)
    }
    // A reader cannot push a node's stream out by taking its id.
    const existing = this.sessions.get(hello.nodeId)
    if (!isNode && existing !== undefined && existing.isNode) return refuse('FORBIDDEN', `node id ${hello.nodeId} belongs to a connected node of this cluster`)
    if (!isNode && !hello.url.startsWith('embedded:')) return refuse('FORBIDDEN', 'only a node of this cluster (one given the cluster secret) may follow as a replica; a user with the replicate permission may follow as an embedded replica')
    if (isNode && this.options.fencing && hello.knownEpoch > epoch) {
      this.options.onHigherEpoch(hello.knownEpoch, `replica ${hello.nodeId}`)
      frames.sendJson({ type: 'refuse', code: 'NOT_MASTER', message: `this master's epoch ${epoch} is older than the replica's ${hello.knownEpoch}: it was deposed` } satisfies MasterMessage)
      frames.close(1008, 'deposed')
      return undefined
    }
    if (hello.version !== protocolVersion) {
      frames.sendJson({ type: 'refuse', code: 'PROTOCOL_ERROR', message: `protocol version ${hello.version} is not ${protocolVersion}` } satisfies MasterMessage)
      frames.close(1002, 'version')
      return undefined
    }
    const marks = hello.marks ?? []
    if (!isHistory(hello.position.hash, marks)) {
      return refuse('PROTOCOL_ERROR', `hello's position.hash and marks must be history hashes (${hashBytes * 2} hex digits), at most ${marksMax} marks at integer LSNs`)
    }
    let problem: { reason: string; forkLsn?: number } | undefined
    try {
      problem = whySnapshot(this.options.log, this.options.lastLsn(), hello.position, marks)
    } catch (error) {
      if (!isTandemError(error, 'LOG_CORRUPTED')) throw error
      this.corruptEntry(error, hello.nodeId)
      problem = { reason: `the master's log entry at the replica's position cannot be read: ${error.message}` }
    }
    if (problem !== undefined) {
      const { reason, forkLsn } = problem
      this.options.logger.info({ replica: hello.nodeId, position: hello.position, reason, forkLsn }, 'replica needs a snapshot')
      frames.sendJson({ type: 'snapshot', reason, ...(forkLsn === undefined ? {} : { forkLsn }) } satisfies MasterMessage)
      frames.close(1000, 'snapshot')
      return undefined
    }
    existing?.socket.terminate()
    const session = new ReplicaSession(frames, { nodeId: hello.nodeId, url: hello.url, lsn: hello.position.lsn, ...(hello.release === undefined ? {} : { release: hello.release }) }, address, this.options.clock.now(), isNode)
    this.sessions.set(hello.nodeId, session)
    if (session.counts) this.known.set(hello.nodeId, this.options.clock.now())
    frames.sendJson({
      type: 'welcome',
      nodeId: this.options.nodeId,
      clusterId,
      epoch: this.options.epoch(),
      lsn: this.options.lastLsn(),
      time: this.options.clock.now(),
      replicas: this.replicaUrls(),
    } satisfies MasterMessage)
    this.options.logger.info({ replica: hello.nodeId, url: hello.url, fromLsn: hello.position.lsn + 1 }, 'replica connected')
    // Tell every replica about the new one now: a promotion must know whom to tell.
    this.sendHeartbeats()
    void this.pump(session)
    return session
  }



  /** Hands a committed entry to every replica: at once, or with the next ones (see CommitHold). */
  publish(entry: LogEntry): void {
    this.hold.add(entry)
  }

  /** Sends every held entry now. */
  sendHeld(): void {
    this.hold.flush()
  }

  /** Frames sent to caught-up replicas as entries committed (each counted once, however many replicas got it), and the entries they carried. */
  readonly streamed = { frames: 0, entries: 0 }

  /**
   * Sends committed entries to each replica that is caught up, the others are pumped: one frame,
   * or several when together they pass batchBytesMax, so no frame holds more than one entry
   * past it and every frame fits a replica's frameBytesMax (shared/limits.ts).
   */
  private stream(entries: LogEntry[]): void {
    let start = 0
    let bytes = 0
    for (let i = 0; i < entries.length; i++) {
      bytes += entries[i]!.ops.length
      if (bytes >= this.options.batchBytesMax || i === entries.length - 1) {
        this.streamFrame(start === 0 && i === entries.length - 1 ? entries : entries.slice(start, i + 1))
        start = i + 1
        bytes = 0
      }
    }
  }

  private streamFrame(entries: LogEntry[]): void {
    const first = entries[0]!.lsn
    let frame: Uint8Array | undefined
    for (const session of this.sessions.values()) {
      if (!session.isPumping && session.sentLsn === first - 1) {
        if (frame === undefined) {
          frame = encodeEntries(entries)
          this.streamed.frames++
          this.streamed.entries += entries.length
        }
        void session.socket.sendBinary(frame)
        session.sentLsn = entries[entries.length - 1]!.lsn
      } else {
        // Behind, or pumping: the pump reads these entries from the log in their turn.
        void this.pump(session)
      }
    }
  }

  /** The newest problem with the master's own log (an entry that fails its checksum), for /status. */
  logProblem: string | undefined

  private corruptEntry(error: TandemError, replica: string): void {
    this.logProblem = error.message
    this.options.logger.error({ err: error, replica }, "the master's log holds a corrupt entry: the replica gets a snapshot instead")
  }

  private async pump(session: ReplicaSession): Promise<void> {
    if (session.isPumping) return
    session.isPumping = true
    try {
      while (session.socket.isOpen && session.sentLsn < this.options.lastLsn()) {
        const entries = this.options.log.read(session.sentLsn + 1, this.options.batchEntriesMax, this.options.batchBytesMax)
        if (entries.length === 0) {
          session.socket.sendJson({ type: 'snapshot', reason: `entry ${session.sentLsn + 1} is no longer retained` } satisfies MasterMessage)
          session.socket.close(1000, 'snapshot')
          return
        }
        // One buffer per session, reused once each frame is written: a catch-up of gigabytes
        // would otherwise leave as many bytes of dead frames outside V8's heap, where they
        // wait for a full collection that a small heap seldom needs.
        session.scratch ??= new Uint8Array(this.options.batchBytesMax + (64 << 10))
        await session.socket.sendBinary(encodeEntries(entries, session.scratch), true)
        session.sentLsn = entries[entries.length - 1]!.lsn
      }
    } catch (error) {
      if (isTandemError(error, 'LOG_CORRUPTED')) {
        // Sending it again would fail again: the replica takes a snapshot of the tables instead.
        this.corruptEntry(error, session.nodeId)
        session.socket.sendJson({ type: 'snapshot', reason: `the master's log cannot be sent from entry ${session.sentLsn + 1}: ${error.message}` } satisfies MasterMessage)
        session.socket.close(1000, 'snapshot')
        return
      }
      this.options.logger.error({ err: error, replica: session.nodeId }, 'replication stream failed')
      session.socket.terminate()
    } finally {
      session.isPumping = false
    }
  }

  private sendHeartbeats(): void {
    const replicas = this.replicaUrls()
    const message = { type: 'heartbeat', epoch: this.options.epoch(), lsn: this.options.lastLsn(), time: this.options.clock.now(), replicas } satisfies MasterMessage
    for (const session of this.sessions.values()) session.socket.sendJson(message)
  }

  /** The URLs of the replicas that could be promoted (not embedded ones). */
  private replicaUrls(): string[] {
    return [...this.sessions.values()].filter((s) => s.counts).map((s) => s.url)
  }

  /**
   * Sends a control message to one replica; false when it is not connected. Held entries go
   * first: a task's assignment names an LSN the replica must reach before running it.
   */
  send(nodeId: string, message: MasterMessage): boolean {
    const session = this.sessions.get(nodeId)
    if (session === undefined || !session.socket.isOpen) return false
    this.sendHeld()
    session.socket.sendJson(message)
    return true
  }

  /** The newest LSN a connected replica acknowledged. */
  ackedLsnOf(nodeId: string): number | undefined {
    return this.sessions.get(nodeId)?.ackedLsn
  }

  replicas(): ReplicaView[] {
    return [...this.sessions.values()]
  }

  /** The oldest LSN a connected replica still needs, for retention. */
  neededFromLsn(): number | undefined {
    let needed: number | undefined
    for (const session of this.sessions.values()) needed = Math.min(needed ?? Infinity, session.ackedLsn + 1)
    return needed
  }

  /** How many replicas have durably applied `lsn` (they acknowledge after COMMIT). */
  confirmedCount(lsn: number): number {
    let count = 0
    for (const session of this.sessions.values()) if (session.counts && session.ackedLsn >= lsn) count++
    return count
  }

  /**
   * Resolves with the number of replicas that confirmed `lsn`, as soon as it reaches `count`,
   * or with whatever it is when `timeoutMs` passes.
   */
  waitForConfirmations(lsn: number, count: number, timeoutMs: number): Promise<number> {
    this.sendHeld()
    const now = this.confirmedCount(lsn)
    if (now >= count) return Promise.resolve(now)
    this.askFlush(lsn)
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        unsubscribe()
        resolve(this.confirmedCount(lsn))
      }
      const timer = setTimeout(done, timeoutMs)
      const unsubscribe = this.onAck(() => {
        if (this.confirmedCount(lsn) >= count) done()
      })
    })
  }

  /**
   * Replicas may hold a sync for a few ms when nobody waits on them: tell the ones that have not
   * confirmed `lsn` that a write waits, so they sync as soon as they apply it. Each replica is
   * asked once per LSN at most (a group commit answers many writes with one LSN).
   */
  private askFlush(lsn: number): void {
    for (const session of this.sessions.values()) {
      if (!session.counts || session.ackedLsn >= lsn || session.flushAskedLsn >= lsn) continue
      session.flushAskedLsn = lsn
      session.socket.sendJson({ type: 'flush', lsn } satisfies MasterMessage)
    }
  }

  /**
   * Replicas that are connected, have acknowledged within `maxLagMs`, and whose oldest missing
   * entry (if any) was committed less than `maxLagMs` ago. Replicas answer every heartbeat, so a
   * paused or cut-off replica stops counting after `maxLagMs`.
   */
  replicasWithin(maxLagMs: number, lastLsn: number, commitTimeOf: (lsn: number) => number | undefined): number {
    const now = this.options.clock.now()
    let count = 0
    for (const session of this.sessions.values()) {
      if (!session.counts || now - session.lastAckAt > maxLagMs) continue
      if (session.ackedLsn < lastLsn) {
        const missingSince = commitTimeOf(session.ackedLsn + 1)
        if (missingSince === undefined || now - missingSince > maxLagMs) continue
      }
      count++
    }
    return count
  }

  private readonly confirmations = new Map<number, (replica: string, epoch: number) => void>()
  private confirmationId = 0
  /** Replicas heard from recently, by id and when: the ones a strong read must hear from. */
  private readonly known = new Map<string, number>()

  /**
   * Asks every connected replica whether this node is still the master, for strong and
   * linearizable reads. Resolves once a majority of the replicas seen in the last
   * `knownWindowMs` answered (none needed when there are none), with the highest epoch they
   * know; rejects with NO_MASTER when too few answer in `timeoutMs`. A replica that follows a
   * newer master answers with its higher epoch, so a deposed master learns it is deposed.
   */
  confirmMastership(timeoutMs: number, knownWindowMs = 60_000): Promise<{ answered: number; highestEpoch: number }> {
    const now = this.options.clock.now()
    for (const session of this.sessions.values()) if (session.counts) this.known.set(session.nodeId, now)
    for (const [id, seen] of this.known) if (now - seen > knownWindowMs) this.known.delete(id)
    const needed = this.known.size === 0 ? 0 : Math.floor(this.known.size / 2) + 1
    const epoch = this.options.epoch()
    if (needed === 0) return Promise.resolve({ answered: 0, highestEpoch: epoch })
    const id = ++this.confirmationId
    const answers = new Map<string, number>()
    return new Promise((resolve, reject) => {
      const finish = (ok: boolean) => {
        clearTimeout(timer)
        this.confirmations.delete(id)
        const highestEpoch = Math.max(epoch, ...answers.values())
        if (ok) resolve({ answered: answers.size, highestEpoch })
        else reject(new TandemError('NO_MASTER', `the master could not confirm it is still the master: ${answers.size} of the ${needed} replicas needed answered within ${timeoutMs} ms`))
      }
      const timer = setTimeout(() => finish(false), timeoutMs)
      this.confirmations.set(id, (replica, answeredEpoch) => {
        answers.set(replica, answeredEpoch)
        if (answeredEpoch > epoch || answers.size >= needed) finish(true)
      })
      const message = { type: 'confirm', id, epoch } satisfies MasterMessage
      for (const session of this.sessions.values()) if (session.counts) session.socket.sendJson(message)
    })
  }

  /** Called after every acknowledgement (synchronous replication waits on these). */
  onAck(listener: () => void): () => void {
    this.ackListeners.add(listener)
    return () => this.ackListeners.delete(listener)
  }

  close(): void {
    clearInterval(this.heartbeat)
    // Every committed entry leaves before the sessions close (the close frame follows them).
    this.sendHeld()
    for (const session of this.sessions.values()) session.socket.close(1001, 'master stopping')
    this.sessions.clear()
  }
}
