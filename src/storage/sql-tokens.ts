/**
 * The two things Tandem needs to know about SQL text that SQLite's API does not tell it: which
 * parameters a statement takes (the binding has no sqlite3_bind_parameter_count, and binds a
 * missing parameter as NULL), and which identifiers a schema statement names (the authorizer
 * never sees a trigger's body when the trigger is created, only when something fires it).
 *
 * The scan follows SQLite's tokenizer (tokenize.c) for what matters here: strings, quoted
 * identifiers (`"x"`, `` `x` ``, `[x]`), comments, and parameters (`?`, `?NNN`, `:name`,
 * `@name`, `$name` with Tcl's `::` and `(…)` suffixes). Identifier characters are letters,
 * digits, `_`, `$` and every character past ASCII, as in SQLite.
 */

/** The parameters of one statement, numbered as SQLite numbers them. */
export interface ParameterSpec {
  /** sqlite3_bind_parameter_count(): the largest index used. */
  count: number
  /** Named parameters as written, prefix included (`:a`). */
  names: ReadonlySet<string>
  /** Whether some index has no name (`?` or `?NNN`): named values alone cannot bind it. */
  hasNumbered: boolean
}

export type SqlToken = { kind: 'identifier'; text: string } | { kind: 'parameter'; text: string; start: number }

function isIdChar(c: string): boolean {
  return /[A-Za-z0-9_$]/.test(c) || c.charCodeAt(0) > 0x7f
}

/**
 * At `i`, a comment or a quoted string or identifier: where it ends (past its closer, or past
 * the text when unterminated) and, for a quote, its opening character. Undefined elsewhere.
 * The one place both scanners (this file's and sql-splitter.ts) skip what is not SQL code.
 */
export function skipCommentOrQuote(text: string, i: number): { end: number; quote?: string } | undefined {
  const c = text[i]
  if (c === '-' && text[i + 1] === '-') {
    const eol = text.indexOf('\n', i)
    return { end: eol === -1 ? text.length : eol + 1 }
  }
  if (c === '/' && text[i + 1] === '*') {
    const close = text.indexOf('*/', i + 2)
    return { end: close === -1 ? text.length : close + 2 }
  }
  if (c !== "'" && c !== '"' && c !== '`' && c !== '[') return undefined
  const closer = c === '[' ? ']' : c
  let j = i + 1
  while (j < text.length) {
    if (text[j] !== closer) j++
    // A doubled closer stands for itself inside the quotes (`[…]` has no escape).
    else if (closer !== ']' && text[j + 1] === closer) j += 2
    else break
  }
  return { end: j + 1, quote: c }
}

/** The text between the quotes that open at `start` and end before `end`, escapes undone. */
function quotedText(text: string, start: number, end: number, quote: string): string {
  const body = text.slice(start + 1, Math.min(end - 1, text.length))
  return quote === '[' ? body : body.replaceAll(quote + quote, quote)
}

/** Identifiers (bare or quoted, unquoted text) and parameters, in order; the rest is skipped. */
export function* sqlTokens(text: string): Generator<SqlToken> {
  const n = text.length
  let i = 0
  while (i < n) {
    const c = text[i]!
    const skipped = skipCommentOrQuote(text, i)
    if (skipped !== undefined) {
      // A double-quoted word is an identifier when it names something, else a string: count it
      // as an identifier, which is the cautious reading for a refusal.
      if (skipped.quote !== undefined && skipped.quote !== "'") yield { kind: 'identifier', text: quotedText(text, i, skipped.end, skipped.quote) }
      i = skipped.end
    } else if (c === '?') {
      let j = i + 1
      while (j < n && /[0-9]/.test(text[j]!)) j++
      yield { kind: 'parameter', text: text.slice(i, j), start: i }
      i = j
    } else if (c === ':' || c === '@' || c === '$') {
      let j = i + 1
      for (;;) {
        while (j < n && isIdChar(text[j]!)) j++
        if (c !== '$') break
        if (text[j] === ':' && text[j + 1] === ':') j += 2
        else if (text[j] === '(' && j > i + 1) {
          const close = text.indexOf(')', j)
          j = close === -1 ? n : close + 1
          break
        } else break
      }
      if (j > i + 1) yield { kind: 'parameter', text: text.slice(i, j), start: i }
      i = Math.max(j, i + 1)
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(text[i + 1] ?? ''))) {
      // A number, `1e5`, `.5` or `0x1F` included, is not an identifier. A `.` before anything
      // else is a dot (tokenize.c): read as a number, it hid `main._tandem_log`'s table name.
      let j = i + 1
      while (j < n && isIdChar(text[j]!)) j++
      i = j
    } else if (isIdChar(c)) {
      let j = i + 1
      while (j < n && isIdChar(text[j]!)) j++
      yield { kind: 'identifier', text: text.slice(i, j) }
      i = j
    } else {
      i++
    }
  }
}

/** One parameter as written, where it starts, and the index SQLite gives it. */
export interface ParameterToken {
  text: string
  start: number
  index: number
}

/** The parameters of one statement in order, numbered as sqlite3ExprAssignVarNumber numbers them. */
export function* parameterTokens(sql: string): Generator<ParameterToken> {
  let count = 0
  const named = new Map<string, number>()
  for (const token of sqlTokens(sql)) {
    if (token.kind !== 'parameter') continue
    let index: number
    if (token.text === '?') index = ++count
    else if (token.text.startsWith('?')) {
      index = Number(token.text.slice(1))
      if (index > count) count = index
    } else {
      index = named.get(token.text) ?? ++count
      named.set(token.text, index)
    }
    yield { text: token.text, start: token.start, index }
  }
}

/** The parameters of one statement. */
export function parametersOf(sql: string): ParameterSpec {
  let count = 0
  let hasNumbered = false
  const names = new Set<string>()
  for (const token of parameterTokens(sql)) {
    count = Math.max(count, token.index)
    if (token.text.startsWith('?')) hasNumbered = true
    else names.add(token.text)
  }
  return { count, names, hasNumbered }
}
