/**
 * JSON in and out without losing 64-bit integers. SQLite holds 64-bit integers and Tandem sends
 * them exactly, but JSON.parse turns 9007199254740993 into ...992. Integers beyond 2^53 are
 * read as bigints; bigints are written as plain JSON integers.
 *
 * The client keeps its own small codec instead of importing http-api's: it imports nothing of
 * the server (see DESIGN.md), and Node 20's JSON.parse reviver has no access to the source text.
 */
import { randomBytes } from 'node:crypto'

// A per-process nonce, so no string a server sends can pass for a marked integer.
const marker = `\u0000tandem-int64-${randomBytes(6).toString('hex')}:`
const minSafe = BigInt(Number.MIN_SAFE_INTEGER)
const maxSafe = BigInt(Number.MAX_SAFE_INTEGER)

/** Parses JSON; integers outside ±(2^53 − 1) become bigints. */
export function parseJson(text: string): unknown {
  // Fast path: only a run of 16 or more digits can exceed 2^53.
  if (!/\d{16}/.test(text)) return JSON.parse(text)
  let marked = ''
  let copiedUpTo = 0
  let i = 0
  while (i < text.length) {
    const c = text.charCodeAt(i)
    if (c === 0x22 /* " */) {
      i = endOfString(text, i)
      continue
    }
    if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      const start = i
      i++
      while (i < text.length && isNumberChar(text.charCodeAt(i))) i++
      const token = text.slice(start, i)
      if (/^-?\d{16,}$/.test(token)) {
        const value = BigInt(token)
        if (value < minSafe || value > maxSafe) {
          marked += `${text.slice(copiedUpTo, start)}${JSON.stringify(marker + token)}`
          copiedUpTo = i
        }
      }
      continue
    }
    i++
  }
  if (copiedUpTo === 0) return JSON.parse(text)
  marked += text.slice(copiedUpTo)
  return JSON.parse(marked, (_key, value: unknown) =>
    typeof value === 'string' && value.startsWith(marker) ? BigInt(value.slice(marker.length)) : value,
  )
}

/** Serializes JSON; bigints are written as JSON integers. */
export function stringifyJson(value: unknown): string {
  let sawBigint = false
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'bigint') return v
    sawBigint = true
    return `${marker}${v}`
  })
  if (!sawBigint) return text
  // JSON.stringify escapes the marker's NUL as \u0000.
  const escaped = JSON.stringify(marker).slice(1, -1).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  return text.replace(new RegExp(`"${escaped}(-?\\d+)"`, 'g'), '$1')
}

/** The index just past the string literal that opens at `start`. */
function endOfString(text: string, start: number): number {
  let i = start + 1
  while (i < text.length) {
    const c = text.charCodeAt(i)
    if (c === 0x5c /* \ */) i += 2
    else if (c === 0x22) return i + 1
    else i++
  }
  return i
}

function isNumberChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d
}
