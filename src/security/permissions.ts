/**
 * Permissions, in rqlite's words plus Tandem's own. A user holds a set of them (users.ts); every
 * endpoint needs one (http-api/gate.ts). `all` holds every other.
 *
 * rqlite's `join`, `join-read-only`, `remove`, `snapshot` and `leader-ops` are accepted so an
 * rqlite auth file loads unchanged; Tandem has no endpoint that needs them.
 */
import { TandemError } from '../shared/errors.ts'

export const permissions = [
  'all',
  'execute',
  'query',
  'load',
  'backup',
  'status',
  'ready',
  'jobs',
  'cluster',
  'replicate',
  'join',
  'join-read-only',
  'remove',
  'snapshot',
  'leader-ops',
] as const

export type Permission = (typeof permissions)[number]

export function parsePermission(value: unknown, where: string): Permission {
  if (typeof value !== 'string' || !(permissions as readonly string[]).includes(value)) {
    throw new TandemError('BAD_REQUEST', `${where}: unknown permission ${JSON.stringify(value)}; use one of ${permissions.join(', ')}`)
  }
  return value as Permission
}
