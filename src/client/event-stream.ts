/**
 * A parser for `text/event-stream` (server-sent events), the format of `GET /jobs/:id/events`.
 *
 * The format (WHATWG HTML, "server-sent events"): UTF-8 text in lines ended by CRLF, LF or CR.
 * A line `field: value` (one optional space after the colon) sets a field of the event being
 * built; a line starting with `:` is a comment (a keep-alive); an empty line dispatches the
 * event. `data` lines accumulate, joined by LF; `event` names the event (`message` when absent);
 * `id` sets the last event id; `retry` is the reconnection delay in ms. An event with no `data`
 * line is not dispatched. Unknown fields are ignored.
 *
 * Chunks may split a line, or a CRLF, anywhere: the parser keeps the unfinished line.
 */
import { TandemClientError } from './client-errors.ts'

export interface ServerSentEvent {
  /** `message` when the stream named none. */
  event: string
  data: string
  /** The last event id seen on the stream so far, '' when none. */
  id: string
}

export class EventStreamParser {
  /** Bounds one line and one event's data, so a stream without line breaks cannot grow memory without end. */
  private readonly bytesMax: number
  private line = ''
  /** The previous chunk ended in CR: an LF opening this one belongs to that line break. */
  private endedInCr = false
  private eventName = ''
  private data: string[] = []
  private dataLength = 0
  private lastId = ''
  /** The server's `retry:` in ms, when it sent one. */
  retryMs: number | undefined

  constructor(bytesMax = 16 * 1024 * 1024) {
    this.bytesMax = bytesMax
  }

  /** Feeds decoded text; returns the events completed by it, in order. */
  push(text: string): ServerSentEvent[] {
    const events: ServerSentEvent[] = []
    let start = 0
    if (this.endedInCr && text.startsWith('\n')) start = 1
    this.endedInCr = false
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i)
      if (c !== 0x0a && c !== 0x0d) continue
      this.line += text.slice(start, i)
      this.takeLine(events)
      if (c === 0x0d) {
        if (i + 1 === text.length) this.endedInCr = true
        else if (text.charCodeAt(i + 1) === 0x0a) i++
      }
      start = i + 1
    }
    this.line += text.slice(start)
    if (this.line.length > this.bytesMax) throw new TandemClientError('BAD_RESPONSE', `an event-stream line is over ${this.bytesMax} characters`)
    return events
  }

  private takeLine(events: ServerSentEvent[]): void {
    const line = this.line
    this.line = ''
    if (line === '') {
      if (this.data.length > 0) events.push({ event: this.eventName === '' ? 'message' : this.eventName, data: this.data.join('\n'), id: this.lastId })
      this.eventName = ''
      this.data = []
      this.dataLength = 0
      return
    }
    if (line.startsWith(':')) return
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    switch (field) {
      case 'event':
        this.eventName = value
        break
      case 'data':
        this.dataLength += value.length + 1
        if (this.dataLength > this.bytesMax) throw new TandemClientError('BAD_RESPONSE', `an event's data is over ${this.bytesMax} characters`)
        this.data.push(value)
        break
      case 'id':
        if (!value.includes('\0')) this.lastId = value
        break
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value)
        break
      default:
        // Unknown fields are ignored, as the format requires.
        break
    }
  }
}
