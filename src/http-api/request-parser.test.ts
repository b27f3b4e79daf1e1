import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isTandemError } from '../shared/errors.ts'
import { decodeUtf8Strict } from './request-parser.ts'

test('a body that is not valid UTF-8 is a bad request, not text with U+FFFD in it', () => {
  for (const bytes of [[0xff], [0x53, 0x45, 0xc3], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xc0, 0xaf]]) {
    assert.throws(() => decodeUtf8Strict(Buffer.from(bytes)), (e) => isTandemError(e, 'BAD_REQUEST'), JSON.stringify(bytes))
  }
})

test('valid UTF-8 decodes as it is, a leading BOM and NUL included', () => {
  const text = '\uFEFF["SELECT \'żółw 🐢\', \'\0\'"]'
  assert.equal(decodeUtf8Strict(Buffer.from(text, 'utf8')), text)
})
