/**
 * One call's deadline and cancellation: its own timeout combined with the caller's signal and
 * the client's closing, as one AbortSignal every request and wait of the call listens to.
 */
import { AbortedError, TimeoutError, type TandemClientError } from './client-errors.ts'

export class CallContext {
  private readonly controller = new AbortController()
  private readonly deadline: number
  private readonly timer: NodeJS.Timeout
  private readonly callerSignal: AbortSignal | undefined
  private readonly onCallerAbort = () => this.controller.abort(this.callerSignal?.reason)
  private hasTimedOut = false

  constructor(timeoutMs: number, callerSignal: AbortSignal | undefined) {
    this.deadline = performance.now() + timeoutMs
    this.callerSignal = callerSignal
    this.timer = setTimeout(() => {
      this.hasTimedOut = true
      this.controller.abort(new Error(`timed out after ${timeoutMs} ms`))
    }, timeoutMs)
    if (callerSignal?.aborted) this.onCallerAbort()
    else callerSignal?.addEventListener('abort', this.onCallerAbort, { once: true })
  }

  get signal(): AbortSignal {
    return this.controller.signal
  }

  get isDone(): boolean {
    return this.controller.signal.aborted
  }

  /** Why the call stopped: its deadline passed, or the caller aborted it. */
  get stopReason(): 'timeout' | 'aborted' {
    return this.hasTimedOut ? 'timeout' : 'aborted'
  }

  remainingMs(): number {
    return Math.max(0, this.deadline - performance.now())
  }

  /** The error for a call stopped before anything could be applied. */
  stoppedError(what: string, lastError: unknown): TandemClientError {
    const callerReason: unknown = this.callerSignal?.reason
    const cause = this.hasTimedOut ? lastError : (callerReason ?? lastError)
    const options = cause === undefined ? {} : { cause }
    if (this.hasTimedOut) return new TimeoutError(`${what} timed out${lastError instanceof Error ? ` (last failure: ${lastError.message})` : ''}`, options)
    return new AbortedError(`${what} was aborted`, options)
  }

  dispose(): void {
    clearTimeout(this.timer)
    this.callerSignal?.removeEventListener('abort', this.onCallerAbort)
  }
}
