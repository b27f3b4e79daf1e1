/**
 * What Tandem keeps in etcd, under one prefix per cluster (--coordinator-prefix, default
 * `/tandem`), every value a JSON object:
 *
 * - `PREFIX/master` — `{id, url, epoch}`: the node that is master, on that node's lease. Taken
 *   only by a transaction that finds it absent; it disappears when its lease ends.
 * - `PREFIX/epoch` — `{epoch, id}`: the last epoch handed out and to whom, on no lease. Every
 *   taking of the master key writes it in the same transaction, on the condition that it is
 *   unchanged since it was read: so epochs only grow, and each belongs to one node.
 * - `PREFIX/sync` — `{lsn, id}`: the highest LSN the master acknowledged as confirmed by replicas
 *   (sync=K), on no lease, written before each such acknowledgement (Coordinator.publishSync), on
 *   the condition that the writer still holds the master key. A replica behind it may not take
 *   the master key.
 * - `PREFIX/nodes/ID` — `{id, url, role, epoch, lsn, eligible}`: where each node stands, on its
 *   own lease, rewritten every tick. Replicas rank themselves by it when the master key is gone.
 *
 * A value that does not parse, or holds wrong types, is not acted on (parse* return undefined):
 * whoever can write to etcd can already pick the master, but a stray key must not crash a node.
 */

export interface MasterRecord {
  id: string
  url: string
  epoch: number
}

export interface EpochRecord {
  epoch: number
  id: string
}

export interface NodeRecord {
  id: string
  url: string
  role: 'master' | 'replica'
  epoch: number
  lsn: number
  /** Whether it may become master (a delayed replica may not). */
  eligible: boolean
}

export function masterKey(prefix: string): string {
  return `${prefix}/master`
}

export function epochKey(prefix: string): string {
  return `${prefix}/epoch`
}

export function syncKey(prefix: string): string {
  return `${prefix}/sync`
}

/** The LSN of a sync record, 0 for an absent or unreadable one. */
export function parseSyncLsn(text: string | undefined): number {
  if (text === undefined) return 0
  const value = object(text)
  const lsn = value?.['lsn']
  return Number.isSafeInteger(lsn) && (lsn as number) >= 0 ? (lsn as number) : 0
}

export function nodesPrefix(prefix: string): string {
  return `${prefix}/nodes/`
}

const idPattern = /^[A-Za-z0-9_.-]{1,64}$/

export function parseMaster(text: string): MasterRecord | undefined {
  const value = object(text)
  if (value === undefined || !isId(value['id']) || !isUrl(value['url']) || !isEpoch(value['epoch'])) return undefined
  return { id: value['id'], url: value['url'], epoch: value['epoch'] }
}

export function parseEpoch(text: string): EpochRecord | undefined {
  const value = object(text)
  if (value === undefined || !isId(value['id']) || !isEpoch(value['epoch'])) return undefined
  return { epoch: value['epoch'], id: value['id'] }
}

export function parseNode(text: string): NodeRecord | undefined {
  const value = object(text)
  if (value === undefined || !isId(value['id']) || !isUrl(value['url']) || !isEpoch(value['epoch'])) return undefined
  const { role, lsn, eligible } = value
  if ((role !== 'master' && role !== 'replica') || !Number.isSafeInteger(lsn) || (lsn as number) < 0 || typeof eligible !== 'boolean') return undefined
  return { id: value['id'], url: value['url'], role, epoch: value['epoch'], lsn: lsn as number, eligible }
}

function object(text: string): Record<string, unknown> | undefined {
  if (text.length > 4096) return undefined
  try {
    const value = JSON.parse(text) as unknown
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && idPattern.test(value)
}

function isEpoch(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 1
}

function isUrl(value: unknown): value is string {
  if (typeof value !== 'string' || value.length > 512) return false
  try {
    const url = new URL(value)
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.username === '' && url.password === '' && url.origin === value
  } catch {
    return false
  }
}
