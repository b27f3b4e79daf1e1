import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isTandemClientError } from './client-errors.ts'
import { EventStreamParser, type ServerSentEvent } from './event-stream.ts'

const stream = [
  ': connected',
  'event: task',
  'data: {"job":"j_1","index":0,"state":"running"}',
  '',
  'event: progress',
  'id: 7',
  'data: {"job":"j_1",',
  'data: "index":0,"value":0.5}',
  '',
  'data: unnamed',
  '',
  'event: job',
  'data: {"job":"j_1","state":"completed"}',
  '',
  '',
].join('\n')

const expected: ServerSentEvent[] = [
  { event: 'task', data: '{"job":"j_1","index":0,"state":"running"}', id: '' },
  { event: 'progress', data: '{"job":"j_1",\n"index":0,"value":0.5}', id: '7' },
  { event: 'message', data: 'unnamed', id: '7' },
  { event: 'job', data: '{"job":"j_1","state":"completed"}', id: '7' },
]

test('a stream parses into its events, whole or split at every offset', () => {
  assert.deepEqual(new EventStreamParser().push(stream), expected)
  for (let cut = 0; cut <= stream.length; cut++) {
    const parser = new EventStreamParser()
    assert.deepEqual([...parser.push(stream.slice(0, cut)), ...parser.push(stream.slice(cut))], expected, `cut at ${cut}`)
  }
})

test('CRLF and CR end lines as LF does, even when a chunk ends between CR and LF', () => {
  for (const newline of ['\r\n', '\r']) {
    const text = stream.replaceAll('\n', newline)
    for (let cut = 0; cut <= text.length; cut++) {
      const parser = new EventStreamParser()
      assert.deepEqual([...parser.push(text.slice(0, cut)), ...parser.push(text.slice(cut))], expected, `${JSON.stringify(newline)} cut at ${cut}`)
    }
  }
})

test('one character at a time gives the same events', () => {
  const parser = new EventStreamParser()
  const events = [...stream].flatMap((c) => parser.push(c))
  assert.deepEqual(events, expected)
})

test('an event waits for its blank line; comments, unknown fields and data-less events dispatch nothing', () => {
  const parser = new EventStreamParser()
  assert.deepEqual(parser.push('event: task\ndata: x\n'), [])
  assert.deepEqual(parser.push('\n'), [{ event: 'task', data: 'x', id: '' }])
  assert.deepEqual(parser.push(': keep-alive\n\nevent: job\nfoo: bar\n\nretry: 2500\n\n'), [])
  assert.equal(parser.retryMs, 2500)
  assert.deepEqual(parser.push('data:no space\ndata\n\n'), [{ event: 'message', data: 'no space\n', id: '' }])
})

test('a line longer than the bound is refused', () => {
  const parser = new EventStreamParser(64)
  assert.throws(() => parser.push(`data: ${'x'.repeat(100)}`), (error) => isTandemClientError(error, 'BAD_RESPONSE'))
})
