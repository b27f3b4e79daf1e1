/**
 * Stopping a read whose client went away, without a message: its read thread may be busy in
 * that very read. The pool and its threads share three arrays (read-protocol.ts): a ring where
 * the pool marks cancelled read ids, the read each thread is running, and each thread's watched
 * connection. A thread writes what it runs before it checks the ring, the pool marks the ring
 * before it reads what the thread runs, so one of them sees the other: the thread skips the read,
 * or the pool stops its statement through StatementLimits.
 */
import { StatementLimits } from '../storage/index.ts'
import { cancelSlots } from './read-protocol.ts'

export class ReadCancels {
  readonly cancels = new Int32Array(new SharedArrayBuffer(4 * cancelSlots))
  readonly running: Int32Array
  readonly connections: Int32Array

  constructor(threads: number) {
    this.running = new Int32Array(new SharedArrayBuffer(4 * threads))
    this.connections = new Int32Array(new SharedArrayBuffer(4 * threads))
  }

  /** Read `id`, posted to thread `thread`, is not wanted any more: skipped, or stopped if running. */
  cancel(thread: number, id: number): void {
    Atomics.store(this.cancels, id % cancelSlots, id)
    if (Atomics.load(this.running, thread) === id) this.stopThread(thread)
  }

  /** Marks read `id` to be skipped, without stopping what its thread runs. */
  mark(id: number): void {
    Atomics.store(this.cancels, id % cancelSlots, id)
  }

  /** Stops whatever statement thread `thread` is running. */
  stopThread(thread: number): void {
    const connection = Atomics.load(this.connections, thread)
    if (connection !== 0) StatementLimits.forThisThread()?.cancel(connection)
  }

  /** The thread died: it runs nothing and holds no connection. */
  forget(thread: number): void {
    Atomics.store(this.connections, thread, 0)
    Atomics.store(this.running, thread, 0)
  }
}

/** On a read thread: whether the pool cancelled read `id`. */
export function isCancelledRead(cancels: Int32Array, id: number): boolean {
  return Atomics.load(cancels, id % cancelSlots) === id
}
