/**
 * One read thread of the ReadPool: its own read-only connection (LocalReads: the same SQL policy,
 * the same statement cache and the same answers as reads on the main thread), serving the reads
 * the pool posts to it, one at a time, in order, each batch answered with one message.
 *
 * The connection is closed and reopened around a snapshot install without a message round trip
 * the main thread would have to wait for in its event loop: the pool and this thread share two
 * words (see ReadPool): `control[0]` is 1 while the database file is being replaced, and
 * `states[index]` says whether this thread holds a connection. Before opening, this thread
 * publishes OPENING and then reads the flag; the pool raises the flag and then reads the state.
 * With sequentially consistent atomics one of the two sees the other, so no connection is ever
 * opened on a file that is being replaced.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { TandemError, isTandemError, messageOf } from '../shared/errors.ts'
import { SchemaGeneration } from '../storage/index.ts'
import { LocalReads } from './local-reads.ts'
import { isCancelledRead } from './read-cancels.ts'
import { connectionState, type ReadReply, type ReadRequest, type ReadWorkerData, type ToReadWorker } from './read-protocol.ts'

const { dbPath, schema: schemaWords, index, control, states, queryTimeoutMs, cancels, running, connections } = workerData as ReadWorkerData
const schema = new SchemaGeneration(schemaWords)
const port = parentPort!
let reads: LocalReads | undefined

function publish(state: number): void {
  Atomics.store(states, index, state)
  Atomics.notify(states, index)
}

function open(): LocalReads | undefined {
  if (reads !== undefined) return reads
  publish(connectionState.opening)
  if (Atomics.load(control, 0) !== 0) {
    publish(connectionState.closed)
    return undefined
  }
  try {
    reads = new LocalReads(dbPath, schema, queryTimeoutMs)
    Atomics.store(connections, index, reads.watchedId ?? 0)
  } finally {
    publish(reads === undefined ? connectionState.closed : connectionState.open)
  }
  return reads
}

function close(): void {
  try {
    Atomics.store(connections, index, 0)
    reads?.close()
  } finally {
    reads = undefined
    publish(connectionState.closed)
  }
}

function isCancelled(id: number): boolean {
  return isCancelledRead(cancels, id)
}

/** Times a read is run again after a cancel that was meant for the read before it. */
const strayCancelsMax = 3

function serve(message: ReadRequest): ReadReply {
  const started = performance.now()
  Atomics.store(running, index, message.id)
  try {
    if (isCancelled(message.id)) throw new TandemError('CANCELLED', 'the read was dropped before it ran: its client went away')
    const local = Atomics.load(control, 0) === 0 ? open() : undefined
    if (local === undefined) {
      close()
      throw new TandemError('NOT_READY', 'this replica is installing a snapshot; retry shortly')
    }
    const { statements, transaction, format, limitMs } = message
    for (let attempt = 0; ; attempt++) {
      try {
        const results = format === undefined ? local.query(statements, transaction, limitMs) : local.queryJson(statements, transaction, format, limitMs)
        return { id: message.id, ok: true, results, micros: (performance.now() - started) * 1000 }
      } catch (error) {
        // A cancel that reached this connection as the read before this one ended stops this one.
        if (!isTandemError(error, 'CANCELLED') || isCancelled(message.id) || attempt >= strayCancelsMax) throw error
      }
    }
  } catch (error) {
    return { id: message.id, ok: false, error: error instanceof TandemError ? { code: error.code, message: error.message } : { message: messageOf(error) } }
  } finally {
    Atomics.store(running, index, 0)
  }
}

port.on('message', (message: ToReadWorker) => {
  switch (message.type) {
    case 'query':
      port.postMessage(message.reads.map(serve))
      break
    case 'close':
      close()
      break
    case 'open':
      try {
        open()
      } catch {
        // Reported to the first read, which tries again.
      }
      break
    case 'stop':
      close()
      port.close()
      break
    case 'crash':
      throw new Error('read thread crashed on purpose')
  }
})

try {
  open()
} catch {
  // Reported to the first read, which tries again.
}
