/**
 * Stored passwords. An --auth file may hold a password as plain text (as rqlite allows) or as a
 * salted scrypt hash made by `tandem hash-password`:
 *
 *   scrypt$<log2 N>$<r>$<p>$<salt, base64>$<key, base64>
 *
 * Version 1 of the format; a string that starts with `scrypt$` and does not parse is refused when
 * the file loads, never taken for a plain password.
 */
import { randomBytes, scrypt, createHash, timingSafeEqual } from 'node:crypto'
import { promisify } from 'node:util'
import { TandemError } from '../shared/errors.ts'

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keyLength: number, options: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>

/** 2^15 × r=8: ~32 MiB and ~60 ms per check here; a verified credential is then cached (users.ts). */
const defaultCost = { logN: 15, r: 8, p: 1 }
const keyBytes = 32

export interface StoredPassword {
  verify(given: string): Promise<boolean>
}

export function parseStoredPassword(text: string, where: string): StoredPassword {
  if (!text.startsWith('scrypt$')) {
    const expected = sha256(text)
    return { verify: (given) => Promise.resolve(timingSafeEqual(sha256(given), expected)) }
  }
  const parts = text.split('$')
  const [, logNText, rText, pText, saltText, keyText] = parts
  const logN = Number(logNText)
  const r = Number(rText)
  const p = Number(pText)
  if (parts.length !== 6 || ![logN, r, p].every((n) => Number.isInteger(n) && n > 0) || logN > 22 || saltText === undefined || keyText === undefined) {
    throw new TandemError('BAD_REQUEST', `${where}: a scrypt password must read scrypt$<log2 N>$<r>$<p>$<salt>$<key> (make one with: tandem hash-password)`)
  }
  const salt = Buffer.from(saltText, 'base64')
  const key = Buffer.from(keyText, 'base64')
  const N = 2 ** logN
  return {
    async verify(given) {
      const derived = await scryptAsync(given, salt, key.length, { N, r, p, maxmem: 256 * N * r + (1 << 20) })
      return timingSafeEqual(derived, key)
    },
  }
}

export async function hashPassword(password: string, cost = defaultCost): Promise<string> {
  const salt = randomBytes(16)
  const N = 2 ** cost.logN
  const key = await scryptAsync(password, salt, keyBytes, { N, r: cost.r, p: cost.p, maxmem: 256 * N * cost.r + (1 << 20) })
  return `scrypt$${cost.logN}$${cost.r}$${cost.p}$${salt.toString('base64')}$${key.toString('base64')}`
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}
