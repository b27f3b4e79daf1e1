/**
 * A node answers HTTP on more than one core: its main process, and `--http-workers` − 1 worker
 * processes (http-worker-main.ts) that answer reads on their own read-only connections. One
 * port, one URL: the main process accepts every connection, reads its first bytes, and hands a
 * connection whose first request is a `/db/query` to the next of [itself, worker 1, …] in turn.
 * Every other connection (writes, the replication stream, jobs, /status) stays with the main
 * process, and a worker forwards anything but a read it can answer to the main process over a
 * local socket (primary-proxy.ts). So writes, replication and job scheduling stay in one place,
 * and the workers share only the HTTP and SQLite work of reads.
 *
 * A worker reads the node's state (its LSN, epoch, role, schema generation, whether the file is
 * being replaced) from memory both map (shared-node-state.ts), published here. A worker that
 * dies is started again (its connections are lost, as a node restart loses them); until it is
 * ready, the main process keeps the connections it would have had. A worker's connections count
 * against its own --connections-max, as the main process's do against its.
 *
 * Not with TLS: the first bytes of a TLS connection say nothing of its requests, and a worker
 * would need the node's key; a node with --tls-cert answers on its main process alone.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net'
import type { Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from '../shared/logger.ts'
import { sharedMemoryUnavailable } from '../shared/shared-memory.ts'
import type { SchemaGeneration } from '../storage/index.ts'
import type { NodeConfig } from './config.ts'
import { SharedNodeState, type PublishedState } from './shared-node-state.ts'

/** What a worker is started with (its argv[2], as JSON). */
export interface HttpWorkerInit {
  index: number
  config: NodeConfig
  /** The state file shared-node-state.ts maps. */
  statePath: string
  /** The main process's local socket for forwarded requests. */
  forwardPath: string
}

export type ToHttpWorker = { type: 'connection'; head: string }
export type FromHttpWorker = { type: 'ready' } | { type: 'stats'; served: number; forwarded: number; connections: number }

/** Bytes of a first request line that mark a read: the method and path. */
const readStarts = ['GET /db/query', 'POST /db/query']

/** In the data directory: the state the workers read (shared-node-state.ts). */
const statePathName = 'http-workers.state'
const restartDelayMs = { first: 100, max: 5000 }
/** A worker that ran this long before it exited is started again at once, however many exits before. */
const restartResetMs = 60_000
/** How often the state is published besides each new LSN (the time since the master was heard, mostly). */
const publishEveryMs = 10

interface Worker {
  index: number
  child: ChildProcess | undefined
  ready: boolean
  restarts: number
  /** Exits in a row, each within restartResetMs of its start: the backoff before the next start. */
  quickExits: number
  startedAt: number
  /** Connections handed to it, in all. */
  handed: number
  stats: { served: number; forwarded: number; connections: number }
  restartTimer: NodeJS.Timeout | undefined
}

function isReadStart(head: Buffer): boolean {
  const text = head.toString('latin1', 0, 16)
  return readStarts.some((start) => text.startsWith(start) && (text.length === start.length || text[start.length] === ' ' || text[start.length] === '?'))
}

/**
 * Where a worker's code is: the build's .js, or the .ts under tsx (tests run from source). It
 * runs with the node's own V8 flags (the bin's heap settings: tens of MB less resident memory).
 */
function workerModule(): { path: string; execArgv: string[] } {
  const url = import.meta.url
  if (!url.endsWith('.ts')) return { path: fileURLToPath(new URL('./http-worker-main.js', url)), execArgv: process.execArgv }
  return { path: fileURLToPath(new URL('./http-worker-main.ts', url)), execArgv: ['--import', 'tsx'] }
}

export class HttpWorkers {
  private readonly workers: Worker[]
  private readonly config: NodeConfig
  private readonly state: SharedNodeState
  private readonly snapshot: () => PublishedState
  private readonly publisher: NodeJS.Timeout
  private readonly logger: Logger
  /** The server's own 'connection' handling: how a connection is served on the main process. */
  private readonly serveHere: (socket: Socket) => void
  private readonly forwards: NetServer
  private readonly forwardPath: string
  /** Connections whose first bytes have not come: the HTTP server does not know them yet. */
  private readonly waiting = new Set<Socket>()
  /** The next in turn of [main process, workers…]: 0 is the main process. */
  private turn = 0
  private closing = false

  /** The state file for a node's workers, or undefined when it answers on its main process alone (and why, logged). */
  static stateFor(config: NodeConfig, hasTls: boolean, schema: SchemaGeneration, logger: Logger): SharedNodeState | undefined {
    if (config.httpWorkers <= 1) return undefined
    const why = hasTls ? 'this node serves HTTPS (--tls-cert)' : sharedMemoryUnavailable
    if (why !== undefined) {
      logger.warn(`--http-workers ${config.httpWorkers}: answering HTTP on the main process alone, as ${why}`)
      return undefined
    }
    // Created before any writer starts: every schema change from the first one is mirrored.
    return SharedNodeState.create(join(config.dataDir, statePathName), schema)
  }

  /**
   * Takes the connections `server` accepts from now on, and starts config.httpWorkers − 1 worker
   * processes in the background. `snapshot`: the node's state now, published for the workers
   * every publishEveryMs; each new LSN is published at once (reached()).
   */
  static async start(server: Server, state: SharedNodeState, config: NodeConfig, logger: Logger, snapshot: () => PublishedState): Promise<HttpWorkers> {
    const workers = new HttpWorkers(server, state, config, logger, snapshot)
    workers.published()
    await new Promise<void>((resolve, reject) => {
      workers.forwards.once('error', reject)
      workers.forwards.listen(workers.forwardPath, () => resolve())
    })
    for (const worker of workers.workers) workers.spawn(worker)
    return workers
  }

  private constructor(server: Server, state: SharedNodeState, config: NodeConfig, logger: Logger, snapshot: () => PublishedState) {
    this.config = config
    this.state = state
    this.snapshot = snapshot
    this.logger = logger
    this.publisher = setInterval(() => this.published(), publishEveryMs).unref()
    const emit = server.emit.bind(server) as (event: string, ...args: unknown[]) => boolean
    this.serveHere = (socket) => emit('connection', socket)
    server.emit = ((event: string, ...args: unknown[]) => {
      if (event !== 'connection' || this.closing) return emit(event, ...args)
      this.route(args[0] as Socket)
      return true
    }) as typeof server.emit
    // Linux: an abstract socket, no file; elsewhere a file only this user may open.
    const name = `tandem-http-${process.pid}-${randomBytes(6).toString('hex')}`
    this.forwardPath = process.platform === 'linux' ? `\0${name}` : join(tmpdir(), `${name}.sock`)
    this.forwards = createNetServer((socket) => this.serveHere(socket))
    // Any local process may connect to it, as to the port: it gets the same gate, and a cap.
    this.forwards.maxConnections = config.connectionsMax
    this.workers = Array.from({ length: config.httpWorkers - 1 }, (_, i) => ({
      index: i + 1,
      child: undefined,
      ready: false,
      restarts: 0,
      quickExits: 0,
      startedAt: 0,
      handed: 0,
      stats: { served: 0, forwarded: 0, connections: 0 },
      restartTimer: undefined,
    }))
  }

  /** Waits for a new connection's first bytes, then serves it here or hands it to a worker. */
  private route(socket: Socket): void {
    const timer = setTimeout(() => socket.destroy(), this.config.headersTimeoutMs)
    // The server's sockets stay half open after the peer's end (allowHalfOpen): one that ends
    // before a byte is ours to close.
    const onEnd = () => socket.destroy()
    socket.on('error', () => socket.destroy())
    socket.once('end', onEnd)
    this.waiting.add(socket)
    socket.once('close', () => {
      clearTimeout(timer)
      this.waiting.delete(socket)
    })
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer)
      this.waiting.delete(socket)
      socket.off('end', onEnd)
      socket.pause()
      const worker = isReadStart(chunk) ? this.nextInTurn() : undefined
      if (worker === undefined || worker.child === undefined) {
        socket.unshift(chunk)
        this.serveHere(socket)
        socket.resume()
        return
      }
      // Whatever else was read already travels with the first chunk; the handle stops reading.
      const parts = [chunk]
      for (let more = socket.read() as Buffer | null; more !== null; more = socket.read() as Buffer | null) parts.push(more)
      ;(socket as Socket & { _handle?: { readStop?: () => number } })._handle?.readStop?.()
      worker.handed++
      const message: ToHttpWorker = { type: 'connection', head: Buffer.concat(parts).toString('latin1') }
      // Without its `server`, Node does not make the server ask the worker about the socket when
      // it closes (a server whose workers were all gone then waited for ever): the server counts
      // the connection as its own until it is destroyed here, once sent.
      ;(socket as Socket & { server: unknown }).server = null
      worker.child.send(message, socket, () => socket.destroy())
    })
  }

  /** The next process in turn that is ready: undefined for the main process. */
  private nextInTurn(): Worker | undefined {
    for (let tries = 0; tries <= this.workers.length; tries++) {
      this.turn = (this.turn + 1) % (this.workers.length + 1)
      if (this.turn === 0) return undefined
      const worker = this.workers[this.turn - 1]!
      if (worker.ready) return worker
    }
    return undefined
  }

  private spawn(worker: Worker): void {
    worker.restartTimer = undefined
    if (this.closing) return
    const { path, execArgv } = workerModule()
    const init: HttpWorkerInit = { index: worker.index, config: this.config, statePath: join(this.config.dataDir, statePathName), forwardPath: this.forwardPath }
    const child = fork(path, [JSON.stringify(init)], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' })
    worker.child = child
    worker.ready = false
    worker.startedAt = Date.now()
    child.on('message', (message: FromHttpWorker) => {
      if (message.type === 'ready') worker.ready = true
      else if (message.type === 'stats') worker.stats = { served: message.served, forwarded: message.forwarded, connections: message.connections }
    })
    child.on('error', (error) => this.logger.warn({ worker: worker.index, error: error.message }, 'an HTTP worker could not be reached'))
    child.once('exit', (code, signal) => {
      worker.child = undefined
      worker.ready = false
      if (this.closing) return
      worker.restarts++
      worker.quickExits = Date.now() - worker.startedAt >= restartResetMs ? 0 : worker.quickExits + 1
      const delay = worker.quickExits === 0 ? 0 : Math.min(restartDelayMs.max, restartDelayMs.first * 2 ** Math.min(worker.quickExits - 1, 6))
      this.logger.warn({ worker: worker.index, code, signal, restartInMs: delay }, 'an HTTP worker exited; starting another')
      worker.restartTimer = setTimeout(() => this.spawn(worker), delay)
    })
  }

  /** Publishes the node's state now. */
  published(): void {
    if (!this.closing) this.state.publish(this.snapshot())
  }

  /** A new LSN, on the write pipeline's and the apply loop's path: one store, nothing else. */
  reached(lsn: number): void {
    this.state.publishLsn(lsn)
  }

  /** The `http_workers` part of /status. */
  stats(): { processes: number; workers: { index: number; pid: number | null; ready: boolean; restarts: number; handed: number; served: number; forwarded: number; connections: number }[] } {
    return {
      processes: this.workers.length + 1,
      workers: this.workers.map((w) => ({ index: w.index, pid: w.child?.pid ?? null, ready: w.ready, restarts: w.restarts, handed: w.handed, ...w.stats })),
    }
  }

  /** Stops the workers (their connections close with them) and the forwarding socket. */
  async close(): Promise<void> {
    this.closing = true
    clearInterval(this.publisher)
    // The HTTP server's close waits for every connection it accepted, these too, and cannot end them.
    for (const socket of this.waiting) socket.destroy()
    const exits = this.workers.map((worker) => {
      clearTimeout(worker.restartTimer)
      const child = worker.child
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
      return new Promise<void>((resolve) => {
        child.once('exit', () => resolve())
        child.kill('SIGKILL')
      })
    })
    await Promise.all(exits)
    await new Promise<void>((resolve) => this.forwards.close(() => resolve()))
  }
}
