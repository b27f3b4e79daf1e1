import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { codes } from './errors.ts'

test("the README's error table is the catalogue, row for row", () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const table = /<!-- errors:start -->\n([\s\S]*?)<!-- errors:end -->/.exec(readme)?.[1]
  assert.ok(table !== undefined, 'README has an errors table between its markers')
  const rows = table.trim().split('\n').map((line) => line.split('|').map((cell) => cell.trim()).filter(Boolean))
  const expected = Object.entries(codes).map(([code, { status, summary }]) => [`\`${code}\``, String(status), summary])
  assert.deepEqual(rows, expected)
})
