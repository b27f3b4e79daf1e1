/**
 * Broken invariants are programmer errors: crash rather than limp on with corrupt state.
 * Expected failures are TandemErrors instead (see errors.ts).
 */
export class AssertionError extends Error {
  constructor(message: string) {
    super(`invariant broken: ${message}`)
    this.name = 'AssertionError'
  }
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message)
}
