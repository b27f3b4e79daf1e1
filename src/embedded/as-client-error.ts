/**
 * An embedded replica reports every failure as the client library's errors (TandemClientError
 * and its subclasses), so an application learns one hierarchy whether it writes through a client
 * or through an embedded replica. The parts it shares with a server node (storage's SQL policy,
 * the LSN waits) throw the server's TandemError; this turns one into a TandemClientError with the
 * same code and message, the original as its cause. Anything else passes through unchanged.
 */
import { TandemClientError } from '../client/index.ts'
import { TandemError } from '../shared/errors.ts'

export function asClientError<E>(error: E): E | TandemClientError {
  if (!(error instanceof TandemError)) return error
  return new TandemClientError(error.code, error.message, { cause: error })
}
