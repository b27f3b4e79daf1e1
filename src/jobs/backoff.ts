/** How long a failed task waits before its next attempt. */
export interface Backoff {
  type: 'fixed' | 'exponential'
  delayMs: number
  /** 0..1: the delay is drawn from [delay × (1 − jitter), delay]. */
  jitter: number
  maxMs: number
}

/** The delay before attempt `attempt + 1`, after `attempt` (≥ 1) failed attempts. */
export function retryDelayMs(backoff: Backoff, attempt: number, random: () => number = Math.random): number {
  const base = backoff.type === 'fixed' ? backoff.delayMs : backoff.delayMs * 2 ** Math.min(attempt - 1, 52)
  const capped = Math.min(base, backoff.maxMs)
  return Math.round(capped * (1 - backoff.jitter * random()))
}
