/**
 * What a node's main process publishes for its HTTP workers (http-workers.ts), in a small file
 * mapped into both (native/shared-memory.c): its role and epoch, the newest LSN applied here,
 * when it last heard its master, whether it may serve reads, the schema generation, and the
 * generation of its database file (a snapshot install replaces it). One writer, the main
 * process; the workers only read. A worker so reads the node's state at the cost of a memory
 * load, with no message per change and no round trip per request.
 *
 * Ordering: the main process publishes an LSN after its COMMIT returned, so a worker that reads
 * the LSN and then starts a read transaction sees at least that LSN's data. The schema generation
 * is the seqlock of schema-generation.ts, mirrored word for word (SchemaGeneration's `mirror`).
 */
import { mapSharedMemory } from '../shared/shared-memory.ts'
import { SchemaGeneration } from '../storage/index.ts'
import type { Role } from '../http-api/node-api.ts'

/** The file's size: the first word is the schema generation's mirror (SchemaGeneration.mirrorInto). */
const bytes = 64
// Int32 words.
const schemaWord = 0
/** Even: the file is open; odd: a snapshot install is replacing it. Moves by 1 at each edge. */
const fileWord = 1
const roleWord = 2
const readableWord = 3
// Float64 slots (bytes 16 onwards).
const lsnSlot = 2
const epochSlot = 3
/** Ms since the master was last heard, as of publishedAt; NaN: never heard (a master: 0). */
const sinceContactSlot = 4
const publishedAtSlot = 5

export interface PublishedState {
  role: Role
  epoch: number
  lsn: number
  /** Local reads may be served (not installing a snapshot, not diverged). */
  readable: boolean
  sinceContactMs: number | undefined
}

export class SharedNodeState {
  private readonly words: Int32Array
  private readonly slots: Float64Array

  private constructor(buffer: ArrayBuffer) {
    this.words = new Int32Array(buffer, 0, 4)
    this.slots = new Float64Array(buffer)
  }

  /**
   * The main process: a fresh state file (its earlier contents cleared), whose first word
   * mirrors `schema` from now on.
   */
  static create(path: string, schema: SchemaGeneration): SharedNodeState {
    const state = SharedNodeState.open(path)
    new Uint8Array(state.slots.buffer).fill(0)
    Atomics.store(state.words, schemaWord, schema.current())
    schema.mirrorInto(path)
    return state
  }

  /** A worker: the state file its main process created. */
  static open(path: string): SharedNodeState {
    return new SharedNodeState(mapSharedMemory(path, bytes))
  }

  /** A worker's view of the node's schema generation (read only). */
  schemaGeneration(): SchemaGeneration {
    return new SchemaGeneration(this.words.subarray(schemaWord, schemaWord + 1))
  }

  publish(state: PublishedState): void {
    this.slots[epochSlot] = state.epoch
    this.slots[sinceContactSlot] = state.sinceContactMs ?? Number.NaN
    this.slots[publishedAtSlot] = Date.now()
    Atomics.store(this.words, roleWord, state.role === 'master' ? 1 : 0)
    Atomics.store(this.words, readableWord, state.readable ? 1 : 0)
    this.slots[lsnSlot] = state.lsn
  }

  /** A new LSN alone, at each commit or apply (the rest is published every few ms). */
  publishLsn(lsn: number): void {
    this.slots[lsnSlot] = lsn
  }

  /** Before a snapshot install replaces the file: workers stop reading it. */
  closeFile(): void {
    if ((Atomics.load(this.words, fileWord) & 1) === 0) Atomics.add(this.words, fileWord, 1)
  }

  /** After the install: workers open the new file. */
  openFile(): void {
    if ((Atomics.load(this.words, fileWord) & 1) === 1) Atomics.add(this.words, fileWord, 1)
  }

  /** Even: the file generation a worker's connection must be of; odd: closed, read nothing. */
  fileGeneration(): number {
    return Atomics.load(this.words, fileWord)
  }

  get role(): Role {
    return Atomics.load(this.words, roleWord) === 1 ? 'master' : 'replica'
  }

  get readable(): boolean {
    return Atomics.load(this.words, readableWord) === 1
  }

  get lsn(): number {
    return this.slots[lsnSlot]!
  }

  get epoch(): number {
    return this.slots[epochSlot]!
  }

  /**
   * Published within `ms`: the node's process is running. One paused (SIGSTOP) or stuck stops
   * publishing, and its workers must not go on answering for it (as a master, say, that was
   * deposed meanwhile).
   */
  isCurrent(ms: number, now = Date.now()): boolean {
    return now - this.slots[publishedAtSlot]! <= ms
  }

  /**
   * Ms since the master was last heard, at least: what was published plus the time since it was
   * (never less than the truth, so a read it calls fresh enough is). Undefined: never heard.
   */
  sinceContactMs(now = Date.now()): number | undefined {
    const since = this.slots[sinceContactSlot]!
    return Number.isNaN(since) ? undefined : since + Math.max(0, now - this.slots[publishedAtSlot]!)
  }
}
