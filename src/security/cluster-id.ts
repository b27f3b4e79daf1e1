/**
 * The cluster id: made when a master first starts, learned by every replica from its master's
 * welcome, and kept in the data directory (`cluster-id`, beside `node-id`, outside the database,
 * which a snapshot replaces). Nodes of different clusters never stream, copy or follow each
 * other. A data directory from before cluster ids adopts its master's on first contact.
 */
import { randomUUID } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { TandemError } from '../shared/errors.ts'

/** What randomUUID() makes. */
const idShape = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

export class ClusterId {
  private readonly file: string
  private id: string | undefined

  constructor(dataDir: string) {
    this.file = join(dataDir, 'cluster-id')
    this.id = existsSync(this.file) ? readFileSync(this.file, 'utf8').trim() || undefined : undefined
  }

  get value(): string | undefined {
    return this.id
  }

  /** A master's: its id, made now if it has none. */
  ensure(): string {
    if (this.id === undefined) this.adopt(randomUUID())
    return this.id!
  }

  /** Takes `id` when this node has none yet; throws CLUSTER_MISMATCH when it has another. */
  adopt(id: unknown, from = 'the other node'): void {
    // It comes from the wire and goes into a file: only the shape a master makes is taken.
    if (typeof id !== 'string' || !idShape.test(id)) throw new TandemError('PROTOCOL_ERROR', `${from} sent a cluster id that is not one (${JSON.stringify(id)?.slice(0, 60) ?? 'none'})`)
    if (this.id === id) return
    if (this.id !== undefined) throw mismatch(this.id, id, from)
    writeFileSync(this.file, `${id}\n`)
    this.id = id
  }

  /** Throws CLUSTER_MISMATCH unless `id` (when known) is this node's cluster. */
  check(id: string | undefined, from: string): void {
    if (id !== undefined && this.id !== undefined && id !== this.id) throw mismatch(this.id, id, from)
  }
}

function mismatch(mine: string, theirs: string, from: string): TandemError {
  return new TandemError('CLUSTER_MISMATCH', `${from} belongs to cluster ${theirs}, this node to cluster ${mine}: nodes of different clusters never follow or copy each other`, { cluster: mine, otherCluster: theirs })
}
