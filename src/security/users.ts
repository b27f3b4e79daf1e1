/**
 * The users of a node, from an --auth file in rqlite's format:
 *
 *   [{"username": "alice", "password": "…", "perms": ["all"]},
 *    {"username": "*", "perms": ["status", "ready"]}]
 *
 * `*` names the anonymous user (a request without credentials). Passwords are plain or scrypt
 * hashes (password-hash.ts). Without a file every request is anonymous and may do anything.
 *
 * Credentials arrive as HTTP Basic on every request. Checking a hash costs tens of ms, so a
 * verified (or refused) Authorization value is remembered, up to `cacheEntriesMax` of them:
 * a client's keep-alive requests then cost one map lookup.
 */
import { readFileSync } from 'node:fs'
import { TandemError, messageOf } from '../shared/errors.ts'
import { parseStoredPassword, type StoredPassword } from './password-hash.ts'
import { parsePermission, type Permission } from './permissions.ts'

export interface Principal {
  /** undefined: the anonymous user. */
  readonly user: string | undefined
  readonly permissions: ReadonlySet<Permission>
}

interface User {
  name: string
  password: StoredPassword
  principal: Principal
}

const cacheEntriesMax = 4096
/**
 * Password checks running at once, at most. Each scrypt check holds one of libuv's four pool
 * threads (which a replica's WAL syncs also use) for tens of ms: a flood of new wrong passwords
 * must not take them all. Past it a request is answered OVERLOADED (503: retry) at once.
 */
const checksInFlightMax = 2

export class Users {
  /** Undefined without an --auth file: everyone may do anything. */
  private readonly users: Map<string, User> | undefined
  private readonly anonymous: Principal
  /** Authorization header value → the principal it proved, or the refusal it earned. */
  private readonly verified = new Map<string, Principal | TandemError>()
  /** Checks running now, by Authorization value: at most checksInFlightMax. */
  private readonly checking = new Map<string, Promise<Principal | TandemError>>()

  private constructor(users: Map<string, User> | undefined, anonymous: Principal) {
    this.users = users
    this.anonymous = anonymous
  }

  static open(): Users {
    return new Users(undefined, { user: undefined, permissions: new Set(['all']) })
  }

  static load(file: string): Users {
    let parsed: unknown
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'))
    } catch (error) {
      throw new TandemError('BAD_REQUEST', `cannot read the --auth file ${file}: ${messageOf(error)}`)
    }
    return Users.fromJson(parsed, file)
  }

  static fromJson(parsed: unknown, where: string): Users {
    if (!Array.isArray(parsed)) throw new TandemError('BAD_REQUEST', `${where}: the auth file must be a JSON list of {"username", "password", "perms"}`)
    const users = new Map<string, User>()
    let anonymous: Principal = { user: undefined, permissions: new Set() }
    parsed.forEach((entry: unknown, i) => {
      const at = `${where}, entry ${i + 1}`
      if (typeof entry !== 'object' || entry === null) throw new TandemError('BAD_REQUEST', `${at}: not an object`)
      const { username, password, perms } = entry as { username?: unknown; password?: unknown; perms?: unknown }
      if (typeof username !== 'string' || username === '' || username.includes(':')) throw new TandemError('BAD_REQUEST', `${at}: username must be a non-empty string without ':'`)
      if (perms !== undefined && !Array.isArray(perms)) throw new TandemError('BAD_REQUEST', `${at}: perms must be a list`)
      const permissions = new Set((perms ?? []).map((p: unknown) => parsePermission(p, at)))
      if (username === '*') {
        anonymous = { user: undefined, permissions }
        return
      }
      if (typeof password !== 'string' || password === '') throw new TandemError('BAD_REQUEST', `${at}: user ${username} needs a password`)
      if (users.has(username)) throw new TandemError('BAD_REQUEST', `${at}: user ${username} is listed twice`)
      users.set(username, { name: username, password: parseStoredPassword(password, at), principal: { user: username, permissions } })
    })
    return new Users(users, anonymous)
  }

  /** True when an --auth file was given. */
  get isEnabled(): boolean {
    return this.users !== undefined
  }

  /**
   * The principal an Authorization header proves: the anonymous user without one; a
   * TandemError (UNAUTHORIZED) for wrong or malformed credentials. Synchronous when the value
   * was seen before, a promise when a password hash must be checked.
   */
  identify(authorization: string | undefined): Principal | TandemError | Promise<Principal | TandemError> {
    if (this.users === undefined) return this.anonymous
    if (authorization === undefined) return this.anonymous
    const known = this.verified.get(authorization) ?? this.checking.get(authorization)
    if (known !== undefined) return known
    if (this.checking.size >= checksInFlightMax) {
      return new TandemError('OVERLOADED', 'too many credential checks are running on this node: retry in a moment')
    }
    const check = this.verify(authorization)
      .then((outcome) => {
        if (this.verified.size >= cacheEntriesMax) this.verified.delete(this.verified.keys().next().value!)
        this.verified.set(authorization, outcome)
        return outcome
      })
      .finally(() => this.checking.delete(authorization))
    // The same credentials arriving meanwhile (a client's parallel requests) wait for this check.
    this.checking.set(authorization, check)
    return check
  }

  private async verify(authorization: string): Promise<Principal | TandemError> {
    const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization)
    if (match === null) return new TandemError('UNAUTHORIZED', 'the Authorization header must be HTTP Basic: "Basic base64(user:password)"')
    const decoded = Buffer.from(match[1]!, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon < 0) return new TandemError('UNAUTHORIZED', 'the Basic credentials must read user:password')
    const name = decoded.slice(0, colon)
    const user = this.users!.get(name)
    // A missing user costs the same check as a wrong password, so timing does not tell them apart.
    const ok = user === undefined ? (await dummy.verify(decoded.slice(colon + 1)), false) : await user.password.verify(decoded.slice(colon + 1))
    if (!ok) return new TandemError('UNAUTHORIZED', `wrong user name or password for ${JSON.stringify(name)}`)
    return user!.principal
  }
}

const dummy = parseStoredPassword('scrypt$15$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', 'dummy')

export function hasPermission(principal: Principal, permission: Permission): boolean {
  return principal.permissions.has('all') || principal.permissions.has(permission)
}
