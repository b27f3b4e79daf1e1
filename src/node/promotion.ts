/**
 * The network side of a promotion: who else is out there and how far they got, and telling
 * them about the new master. A promotion picks the most up-to-date replica, because a replica
 * behind another would make the other discard acknowledged entries it holds.
 */
import { TandemError, messageOf } from '../shared/errors.ts'
import type { Logger } from '../shared/logger.ts'
import { backoffMs, sleep } from '../shared/wait.ts'
import type { Position } from '../replication-log/log-entry.ts'
import type { PeerCredentials } from '../security/index.ts'
import type { Vote, VoteCandidate } from '../replication-log/log-store.ts'

export interface PeerStatus {
  url: string
  id: string
  role: string
  epoch: number
  lsn: number
  /** The peer's cluster id, when it says. */
  clusterId?: string
}

const surveyTimeoutMs = 1500

/** A node's role, epoch and position, or undefined when it does not answer in time. */
export async function statusOf(url: string, peers: PeerCredentials): Promise<PeerStatus | undefined> {
  try {
    const response = await peers.fetch(`${url}/status`, { signal: AbortSignal.timeout(surveyTimeoutMs) })
    if (!response.ok) return undefined
    const body = (await response.json()) as { role: string; epoch: number; position: Position; node: { id: string; cluster_id?: string } }
    const status: PeerStatus = { url, id: body.node.id, role: body.role, epoch: body.epoch, lsn: body.position.lsn }
    if (typeof body.node.cluster_id === 'string') status.clusterId = body.node.cluster_id
    return status
  } catch {
    return undefined
  }
}

/** Asks every peer (HTTP URLs only: embedded replicas serve nothing) where it is. */
export async function surveyPeers(urls: readonly string[], peers: PeerCredentials): Promise<PeerStatus[]> {
  const answers = await Promise.all(urls.filter((u) => /^https?:/.test(u)).map((u) => statusOf(u, peers)))
  return answers.filter((a): a is PeerStatus => a !== undefined)
}

/** A peer's answer to a fence: whether it accepted the candidate for the epoch, and where it stands. */
export interface FenceAnswer extends PeerStatus {
  granted: boolean
  /** The promotion the peer accepted last (the winner, when it refused). */
  vote?: Vote
}

/**
 * Asks every reachable peer to accept `candidate`, whose log ends at `position`, as the master of
 * `epoch` (POST /cluster/fence): a peer that grants it is fenced (an old master stops taking
 * writes; a replica stops following it and drops what it has not applied), so positions no
 * longer move and comparing them means something. A replica holding more of the log than the
 * candidate refuses (NodeRoles.fence). Peers that do not answer in time are left out.
 */
export async function fencePeers(urls: readonly string[], epoch: number, candidate: VoteCandidate, position: Position, peers: PeerCredentials): Promise<FenceAnswer[]> {
  const answers = await Promise.all(
    urls
      .filter((u) => /^https?:/.test(u))
      .map(async (url): Promise<FenceAnswer | undefined> => {
        try {
          const response = await peers.fetch(`${url}/cluster/fence`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ epoch, candidate, position: { epoch: position.epoch, lsn: position.lsn } }),
            signal: AbortSignal.timeout(surveyTimeoutMs),
          })
          if (!response.ok) return undefined
          const body = (await response.json()) as FenceReply
          const answer: FenceAnswer = { url, id: body.id, role: body.role, epoch: body.position.epoch, lsn: body.position.lsn, granted: body.granted === true }
          if (body.vote !== undefined) answer.vote = body.vote
          return answer
        } catch {
          return undefined
        }
      }),
  )
  return answers.filter((a): a is FenceAnswer => a !== undefined)
}

/** What POST /cluster/fence answers (NodeRoles.fence). */
export interface FenceReply {
  granted: boolean
  vote?: Vote
  role: 'master' | 'replica'
  epoch: number
  position: Position
  id: string
}

/** Whether `a` holds more of the log than `b`: a later epoch, or more entries in the same one. */
export function isAhead(a: Pick<Position, 'epoch' | 'lsn'>, b: Pick<Position, 'epoch' | 'lsn'>): boolean {
  return a.epoch > b.epoch || (a.epoch === b.epoch && a.lsn > b.lsn)
}

/**
 * Throws PROMOTION_REFUSED naming a reachable replica (or, with `masters`, any node: a takeover
 * never starts below a master that is still there) that holds more of the log.
 */
export function refuseIfBehind(position: Position, peers: readonly PeerStatus[], masters = false): void {
  const ahead = peers
    .filter((p) => (masters || p.role === 'replica') && isAhead(p, position))
    .sort((a, b) => b.epoch - a.epoch || b.lsn - a.lsn)[0]
  if (ahead !== undefined) {
    throw new TandemError(
      'PROMOTION_REFUSED',
      `${ahead.role} ${ahead.id} at ${ahead.url} is more up to date (epoch ${ahead.epoch}, LSN ${ahead.lsn}) than this one (epoch ${position.epoch}, LSN ${position.lsn}): promote it instead, or pass force`,
      { moreUpToDate: { id: ahead.id, url: ahead.url, epoch: ahead.epoch, lsn: ahead.lsn } },
    )
  }
}

/**
 * Tells each peer to follow `masterUrl`. Resolves after the first attempt at each (so the
 * promotion answers once the reachable peers follow); a peer that did not answer is retried in
 * the background with backoff for a bounded time (told when it is back, within the window).
 */
export async function tellToFollow(urls: readonly string[], masterUrl: string, logger: Logger, peers: PeerCredentials, windowMs = 10 * 60_000): Promise<void> {
  const firstAttempts: Promise<void>[] = []
  for (const peer of urls.filter((u) => /^https?:/.test(u))) {
    let firstDone: () => void = () => undefined
    firstAttempts.push(new Promise<void>((resolve) => (firstDone = resolve)))
    void (async () => {
      const deadline = Date.now() + windowMs
      for (let attempt = 0; Date.now() < deadline; attempt++) {
        try {
          const response = await peers.fetch(`${peer}/cluster/follow`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ master: masterUrl }),
            signal: AbortSignal.timeout(5000),
          })
          if (response.ok) {
            logger.info({ peer }, 'told a peer to follow this master')
            return
          }
          logger.warn({ peer, status: response.status, body: await response.text() }, 'a peer refused to follow this master')
          if (response.status < 500) return
        } catch (error) {
          if (attempt === 0) logger.warn({ peer, err: messageOf(error) }, 'a peer is not reachable; will keep telling it')
        } finally {
          firstDone()
        }
        await sleep(backoffMs(attempt, 200, 10_000))
      }
    })()
  }
  await Promise.all(firstAttempts)
}
