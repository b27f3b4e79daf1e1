/**
 * Splits SQL text into statements the way sqlite3_complete() sees them: a `;` ends a
 * statement unless it sits in a string, an identifier, a comment, or the body of a
 * CREATE TRIGGER (which ends at `END;`). The binding's prepare() silently ignores everything
 * after the first statement, so without this `SELECT 1; DROP TABLE t` would run half.
 */
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
    if (c === '-' && text[i + 1] === '-') {
      const eol = text.indexOf('\n', i)
      i = eol === -1 ? n : eol + 1
    } else if (c === '/' && text[i + 1] === '*') {
      const close = text.indexOf('*/', i + 2)
      i = close === -1 ? n : close + 2
    } else if (c === "'" || c === '"' || c === '`' || c === '[') {
      const closer = c === '[' ? ']' : c
      let j = i + 1
      while (j < n) {
        if (text[j] === closer) {
          if (closer !== ']' && text[j + 1] === closer) j += 2
          else break
        } else j++
      }
      if (words.length === 0) words.push('')
      lastWord = ''
      i = j + 1
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
