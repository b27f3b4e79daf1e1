/**
 * What `POST /jobs` asks for, validated: every field is checked before anything is stored, and a
 * bad one is named in a BAD_REQUEST. Inputs are kept as JSON text, exactly as they will reach
 * the handler.
 */
import { createHash } from 'node:crypto'
import { TandemError } from '../shared/errors.ts'
import type { Backoff } from './backoff.ts'

export interface JobOptions {
  attempts: number
  backoff: Backoff
  timeoutMs: number
  priority: number
  /** The job's group key: per-group limits apply to it (limits.ts), and groups share slots fairly. */
  group?: string
}

/**
 * `dedupe`: at most one live job per key. `drop`: a submission while the key's job is live
 * answers that job instead (live: unfinished; with `windowMs`, for that long after it was
 * created, finished or not). `debounce`: a submission while the key's job still waits for its
 * delay replaces its input and starts its delay again.
 */
export interface Dedupe {
  key: string
  mode: 'drop' | 'debounce'
  windowMs: number | undefined
}

export interface JobSpec {
  name: string
  /** One JSON text per task, in input order. */
  inputs: string[]
  /** False when the job was submitted with one `input` (not a list). */
  isFanOut: boolean
  options: JobOptions
  delayMs: number
  idempotencyKey: string | undefined
  dedupe: Dedupe | undefined
  /** Jobs this one runs after: it waits until each has ended, and its tasks get their results (ctx.after). */
  after: string[]
  /** When one of `after` ends failed or cancelled: fail this job too, or run it anyway. */
  onFailure: 'fail' | 'continue'
  /** Tells a retry of this submission from a different one under the same idempotency key. */
  hash: string
}

export const tasksPerJobMax = 100_000
/**
 * How deeply an input may nest arrays and objects. JSON.parse takes any depth, but every
 * recursive walk after it (JSON.stringify here, the handler's own code) overflows the stack
 * somewhere past a few thousand levels: a 500 for a request that is simply bad.
 */
export const inputDepthMax = 64
const attemptsMax = 1000
const timeoutMsMax = 7 * 24 * 60 * 60 * 1000

export const defaultJobOptions: JobOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delayMs: 1000, jitter: 0, maxMs: 60 * 60 * 1000 },
  timeoutMs: 300_000,
  priority: 0,
}

const known = new Set(['name', 'input', 'inputs', 'attempts', 'backoff', 'timeout_ms', 'priority', 'group', 'delay_ms', 'idempotency_key', 'dedupe', 'after', 'on_failure'])
/** Jobs one job may run after. */
export const afterMax = 100
export const dedupeKeyCharsMax = 200

export function parseJobSpec(body: unknown): JobSpec {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('the body must be a JSON object: {"name": …, "input": …} or {"name": …, "inputs": […]}')
  const fields = body as Record<string, unknown>
  refuseUnknownFields(fields, known)
  const name = fields['name']
  if (typeof name !== 'string' || !/^[A-Za-z_$][\w$]{0,127}$/.test(name)) throw bad('"name" must be the name of a handler (an exported function name)')
  const hasInput = 'input' in fields
  const hasInputs = 'inputs' in fields
  if (hasInput === hasInputs) throw bad('give exactly one of "input" (one task) and "inputs" (a list: one task per input)')
  let inputs: string[]
  if (hasInputs) {
    const list = fields['inputs']
    if (!Array.isArray(list) || list.length === 0) throw bad('"inputs" must be a non-empty array')
    if (list.length > tasksPerJobMax) throw bad(`"inputs" holds ${list.length} inputs; at most ${tasksPerJobMax} per job`)
    for (const input of list) checkDepth(input, '"inputs"')
    inputs = list.map((input) => JSON.stringify(input ?? null))
  } else {
    checkDepth(fields['input'], '"input"')
    inputs = [JSON.stringify(fields['input'] ?? null)]
  }
  const options = parseJobOptions(fields)
  const key = fields['idempotency_key']
  if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 200)) throw bad('"idempotency_key" must be a string of 1 to 200 characters')
  if (key?.startsWith(reservedKeyPrefix) === true) throw bad(`"idempotency_key" must not start with ${reservedKeyPrefix}: Tandem's schedules key their jobs so`)
  const delayMs = integerField(fields, 'delay_ms', 0, timeoutMsMax) ?? 0
  const dedupe = parseDedupe(fields['dedupe'], hasInputs, delayMs)
  const after = fields['after'] ?? []
  if (!Array.isArray(after) || after.length > afterMax || after.some((id) => typeof id !== 'string' || !/^j_[0-9a-z]{1,64}$/.test(id))) {
    throw bad(`"after" must be a list of at most ${afterMax} job ids (j_…)`)
  }
  const ids = [...new Set(after as string[])]
  const onFailure = fields['on_failure'] ?? 'fail'
  if (onFailure !== 'fail' && onFailure !== 'continue') throw bad('"on_failure" must be "fail" (the job fails when one it runs after fails or is cancelled) or "continue" (it runs anyway)')
  if (fields['on_failure'] !== undefined && ids.length === 0) throw bad('"on_failure" is for a job with "after"')
  const hash = createHash('sha256').update(JSON.stringify([name, inputs, options, delayMs, dedupe ?? null, ids, onFailure])).digest('hex')
  return { name, inputs, isFanOut: hasInputs, options, delayMs, idempotencyKey: key, dedupe, after: ids, onFailure, hash }
}

function parseDedupe(value: unknown, isFanOut: boolean, delayMs: number): Dedupe | undefined {
  if (value === undefined) return undefined
  const shape = '"dedupe" must be an object: {"key": "…", "mode": "drop" | "debounce", "window_ms": …}'
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(shape)
  const fields = value as Record<string, unknown>
  refuseUnknownFields(fields, dedupeFields, 'dedupe.', shape)
  const key = fields['key']
  if (typeof key !== 'string' || key.length === 0 || key.length > dedupeKeyCharsMax) throw bad(`"dedupe.key" must be a string of 1 to ${dedupeKeyCharsMax} characters`)
  const mode = fields['mode'] ?? 'drop'
  if (mode !== 'drop' && mode !== 'debounce') throw bad('"dedupe.mode" must be "drop" (answer the live job instead) or "debounce" (replace the waiting job\'s input)')
  const windowMs = integerField(fields, 'window_ms', 1, timeoutMsMax, 'dedupe.')
  if (mode === 'debounce') {
    if (windowMs !== undefined) throw bad('"dedupe.window_ms" is for mode "drop"; a debounced job waits "delay_ms" after the newest submission')
    if (isFanOut) throw bad('"dedupe.mode" "debounce" takes one "input": it replaces the waiting job\'s input')
    if (delayMs < 1) throw bad('"dedupe.mode" "debounce" needs "delay_ms" of 1 or more: how long the job waits for a newer submission to replace its input')
  }
  return { key, mode, windowMs }
}

/** Idempotency keys starting so are Tandem's own (schedule-spec.ts keys each occurrence's job). */
export const reservedKeyPrefix = '_tandem'

/** `attempts`, `backoff`, `timeout_ms` and `priority` of a job, or of the jobs a schedule makes. */
export function parseJobOptions(fields: Record<string, unknown>): JobOptions {
  const group = fields['group']
  if (group !== undefined && (typeof group !== 'string' || group.length === 0 || group.length > 200 || group === '*')) throw bad('"group" must be a group key of 1 to 200 characters (not "*")')
  return {
    attempts: integerField(fields, 'attempts', 1, attemptsMax) ?? defaultJobOptions.attempts,
    backoff: parseBackoff(fields['backoff']),
    timeoutMs: integerField(fields, 'timeout_ms', 1, timeoutMsMax) ?? defaultJobOptions.timeoutMs,
    priority: integerField(fields, 'priority', -1_000_000, 1_000_000) ?? defaultJobOptions.priority,
    ...(group === undefined ? {} : { group }),
  }
}

function parseBackoff(value: unknown): Backoff {
  const fallback = defaultJobOptions.backoff
  if (value === undefined) return fallback
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('"backoff" must be an object: {"type": "fixed" | "exponential", "delay_ms", "jitter", "max_ms"}')
  const fields = value as Record<string, unknown>
  const type = fields['type'] ?? fallback.type
  if (type !== 'fixed' && type !== 'exponential') throw bad('"backoff.type" must be "fixed" or "exponential"')
  const jitter = fields['jitter'] ?? fallback.jitter
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) throw bad('"backoff.jitter" must be a number from 0 to 1')
  const delayMs = integerField(fields, 'delay_ms', 0, timeoutMsMax, 'backoff.') ?? fallback.delayMs
  const maxMs = integerField(fields, 'max_ms', 0, timeoutMsMax, 'backoff.') ?? Math.max(fallback.maxMs, delayMs)
  return { type, delayMs, jitter, maxMs }
}

export function integerField(fields: Record<string, unknown>, name: string, min: number, max: number, prefix = ''): number | undefined {
  const value = fields[name]
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw bad(`"${prefix}${name}" must be an integer from ${min} to ${max}`)
  return value
}

/** Walks without recursion, so the check itself cannot overflow the stack. */
export function checkDepth(value: unknown, what: string): void {
  const stack: [unknown, number][] = [[value, 1]]
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!
    if (typeof node !== 'object' || node === null) continue
    if (depth > inputDepthMax) throw bad(`${what} nests arrays or objects more than ${inputDepthMax} levels deep`)
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1])
    }
  }
}

const dedupeFields = new Set(['key', 'mode', 'window_ms'])

/** BAD_REQUEST naming the first field of `fields` not in `known` (with its `prefix`), and what is allowed (or `hint`). */
export function refuseUnknownFields(fields: Record<string, unknown>, known: ReadonlySet<string>, prefix = '', hint?: string): void {
  const unknownField = Object.keys(fields).find((key) => !known.has(key))
  if (unknownField !== undefined) throw bad(`unknown field "${prefix}${unknownField}"; ${hint ?? `allowed: ${[...known].join(', ')}`}`)
}

export function bad(message: string): TandemError {
  return new TandemError('BAD_REQUEST', message)
}
