/**
 * A read's HTTP answer built in two halves, so that the main thread neither receives row arrays
 * nor formats them: the read thread turns the statement results into the `results` array's JSON
 * text (`resultsJson`), and the main thread wraps that text into the body (`readAnswerBody`)
 * without parsing it. Structured clone of one string costs far less than of the rows, and the
 * formatting and serialization run on the read threads, beside the SQL.
 *
 * Invariant (tested in read-answer.test.ts): for every flag combination,
 * readAnswerBody(resultsJson(results, f), t) equals stringifyJson({ results: results.map(r =>
 * formatResult(r, f)), time: t }), the body answered before this split. `pretty` takes that
 * older path (indentation would need the text re-indented).
 */
import type { StatementResult } from '../storage/index.ts'
import type { Answer } from './answer.ts'
import { stringifyJson } from './json.ts'
import { formatResult, type FormatOptions } from './rqlite-format.ts'

/** The `results` array as rqlite shows it, as compact JSON text (bigints exact). */
export function resultsJson(results: readonly StatementResult[], options: FormatOptions): string {
  return stringifyJson(results.map((result) => formatResult(result, options)))
}

/** `{"results":…}`, with the request's `time` in seconds when `timings` asked for it. */
export function readAnswerBody(resultsText: string, timeSec: number | undefined): string {
  // JSON.stringify of a number: the exact text it has inside an object.
  return timeSec === undefined ? `{"results":${resultsText}}` : `{"results":${resultsText},"time":${JSON.stringify(timeSec)}}`
}

/** A read's whole answer: its body, and the LSN the node had applied when it answered. */
export function readAnswer(resultsText: string, appliedLsn: number, timeSec: number | undefined): Answer {
  return {
    status: 200,
    headers: { 'x-tandem-lsn': String(appliedLsn), 'content-type': 'application/json; charset=utf-8' },
    body: readAnswerBody(resultsText, timeSec),
  }
}
