/**
 * Time comes from here so tests can drive it. Milliseconds since the Unix epoch, with
 * sub-millisecond resolution: the wall clock at process start plus the monotonic clock since.
 * Entries carry this commit time, and a replica on the same machine measures lag against it, so
 * whole milliseconds would hide a lag that is typically below one.
 */
export interface Clock {
  now(): number
}

export const systemClock: Clock = { now: () => performance.timeOrigin + performance.now() }
