import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TandemError } from '../shared/errors.ts'
import { hashPassword } from './password-hash.ts'
import { Users, hasPermission, type Principal } from './users.ts'

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

async function identify(users: Users, header: string | undefined): Promise<Principal | TandemError> {
  return users.identify(header)
}

test('without an auth file everyone is anonymous and may do anything', async () => {
  const users = Users.open()
  const principal = await identify(users, basic('anyone', 'anything'))
  assert.ok(!(principal instanceof TandemError))
  assert.equal(principal.user, undefined)
  assert.ok(hasPermission(principal, 'cluster'))
})

test("an rqlite auth file: plain and scrypt passwords, per-user permissions, '*' for the anonymous user", async () => {
  const users = Users.fromJson(
    [
      { username: 'alice', password: 'plain secret', perms: ['all'] },
      { username: 'bob', password: await hashPassword('hashed secret', { logN: 10, r: 8, p: 1 }), perms: ['query', 'status'] },
      { username: '*', perms: ['ready'] },
    ],
    'users.json',
  )
  const alice = await identify(users, basic('alice', 'plain secret'))
  assert.ok(!(alice instanceof TandemError) && alice.user === 'alice' && hasPermission(alice, 'execute'))
  const bob = await identify(users, basic('bob', 'hashed secret'))
  assert.ok(!(bob instanceof TandemError) && bob.user === 'bob')
  assert.ok(hasPermission(bob, 'query') && !hasPermission(bob, 'execute'))
  const anonymous = await identify(users, undefined)
  assert.ok(!(anonymous instanceof TandemError) && anonymous.user === undefined)
  assert.ok(hasPermission(anonymous, 'ready') && !hasPermission(anonymous, 'query'))
})

test('wrong passwords, unknown users and malformed headers are refused with UNAUTHORIZED, every time', async () => {
  const users = Users.fromJson([{ username: 'alice', password: 'right', perms: ['all'] }], 'users.json')
  for (const header of [basic('alice', 'wrong'), basic('mallory', 'right'), 'Bearer abc', 'Basic !!!', `Basic ${Buffer.from('no colon').toString('base64')}`]) {
    for (let attempt = 0; attempt < 2; attempt++) {
      const outcome = await identify(users, header)
      assert.ok(outcome instanceof TandemError && outcome.code === 'UNAUTHORIZED', `${header} (attempt ${attempt + 1}) must be refused`)
    }
  }
  const ok = await identify(users, basic('alice', 'right'))
  assert.ok(!(ok instanceof TandemError))
})

test('a verified credential is answered from memory the second time', async () => {
  const users = Users.fromJson([{ username: 'alice', password: await hashPassword('pw', { logN: 10, r: 8, p: 1 }), perms: ['query'] }], 'users.json')
  const first = users.identify(basic('alice', 'pw'))
  assert.ok(first instanceof Promise, 'the first check runs scrypt')
  await first
  const second = users.identify(basic('alice', 'pw'))
  assert.ok(!(second instanceof Promise) && !(second instanceof TandemError) && second.user === 'alice')
})

test('a bad auth file is refused with a message naming the entry', () => {
  const cases: [unknown, RegExp][] = [
    [{ username: 'a' }, /JSON list/],
    [[{ username: 'a', password: 'p', perms: ['write'] }], /entry 1: unknown permission "write"/],
    [[{ username: 'a', perms: ['all'] }], /entry 1: user a needs a password/],
    [[{ username: 'a', password: 'p' }, { username: 'a', password: 'q' }], /entry 2: user a is listed twice/],
    [[{ username: 'a:b', password: 'p' }], /without ':'/],
    [[{ username: 'a', password: 'scrypt$15$8$1$nope' }], /scrypt password must read/],
  ]
  for (const [json, message] of cases) assert.throws(() => Users.fromJson(json, 'users.json'), message)
})

test('new credentials are checked a few at a time: past that a request is told to retry, and nothing is remembered for it', async () => {
  const users = Users.fromJson([{ username: 'alice', password: await hashPassword('pw', { logN: 10, r: 8, p: 1 }), perms: ['query'] }], 'users.json')
  const outcomes = Array.from({ length: 10 }, (_, i) => users.identify(basic('alice', `wrong ${i}`)))
  const checking = outcomes.filter((o) => o instanceof Promise)
  assert.equal(checking.length, 2, 'two checks run at once')
  for (const o of outcomes) if (!(o instanceof Promise)) assert.ok(o instanceof TandemError && o.code === 'OVERLOADED')
  await Promise.all(checking)
  // A client's parallel requests with the same credentials share one check.
  const parallel = Array.from({ length: 5 }, () => users.identify(basic('alice', 'pw')))
  assert.ok(parallel.every((o) => o instanceof Promise))
  for (const o of await Promise.all(parallel)) assert.ok(!(o instanceof TandemError) && o.user === 'alice')
  // The refused attempts were not cached: asked again, each is checked (and refused for its password).
  const again = await users.identify(basic('alice', 'wrong 9'))
  assert.ok(again instanceof TandemError && again.code === 'UNAUTHORIZED')
  const right = await users.identify(basic('alice', 'pw'))
  assert.ok(!(right instanceof TandemError) && right.user === 'alice')
})
