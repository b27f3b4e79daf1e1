/**
 * Splits SQL text into statements the way sqlite3_complete() sees them: a `;` ends a
 * statement unless it sits in a string, an identifier, a comment, or the body of a
 * CREATE TRIGGER (which ends at `END;`). The binding's prepare() silently ignores everything
 * after the first statement, so without this `SELECT 1; DROP TABLE t` would run half.
 */
import { skipCommentOrQuote } from './sql-tokens.ts'

export interface SplitStatement {
  /** The statement's text, trimmed, without its closing `;`. */
  sql: string
  /** Its first keyword in upper case ('' when it starts with something else). */
  keyword: string
}

export function splitSql(text: string): SplitStatement[] {
  const statements: SplitStatement[] = []
  let start = 0
  let words: string[] = []
  let lastWord = ''
  let i = 0
  const n = text.length

  const finish = (end: number) => {
    const sql = text.slice(start, end).trim()
    if (words.length > 0) statements.push({ sql, keyword: words[0] ?? '' })
    words = []
    lastWord = ''
    start = end + 1
  }

  while (i < n) {
    const c = text[i]!
    const skipped = skipCommentOrQuote(text, i)
    if (skipped !== undefined) {
      if (skipped.quote !== undefined) {
        if (words.length === 0) words.push('')
        lastWord = ''
      }
      i = skipped.end
    } else if (c === ';') {
      if (!isTriggerBody(words) || lastWord === 'END') finish(i)
      else lastWord = ''
      i++
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i + 1
      while (j < n && /[A-Za-z0-9_$]/.test(text[j]!)) j++
      lastWord = text.slice(i, j).toUpperCase()
      if (words.length < 4) words.push(lastWord)
      i = j
    } else if (/\s/.test(c)) {
      i++
    } else {
      if (words.length === 0) words.push('')
      lastWord = ''
      i++
    }
  }
  if (words.length > 0) finish(n)
  return statements
}

/** CREATE [TEMP|TEMPORARY] TRIGGER, possibly after EXPLAIN. */
function isTriggerBody(words: readonly string[]): boolean {
  const w = words[0] === 'EXPLAIN' ? words.slice(1) : words
  if (w[0] !== 'CREATE') return false
  return w[1] === 'TRIGGER' || ((w[1] === 'TEMP' || w[1] === 'TEMPORARY') && w[2] === 'TRIGGER')
}
