/**
 * A worker thread that runs handlers, one task at a time. It imports the handlers module once,
 * says which handlers it found, then runs what it is sent. `ctx.db` is a read-only connection to
 * the replica's database, opened on first use and reopened after a snapshot replaced the file.
 *
 *   main → worker   {type: 'run', id, name, input, after?, generation, task}   input, after: JSON text
 *                   {type: 'abort', id, reason}
 *   worker → main   {type: 'ready', handlers} | {type: 'broken', message}
 *                   {type: 'progress', id, value}
 *                   {type: 'done', id, ok, value?, error?}             value: JSON text
 */
import { parentPort, workerData } from 'node:worker_threads'
import { openConnection, resultTooLargeError, watchConnection, type Connection, type WatchedConnection } from '../storage/index.ts'
import { valueBytesMax } from '../shared/limits.ts'

type Handler = (input: unknown, ctx: unknown) => unknown
type FromMain =
  | { type: 'run'; id: number; name: string; input: string; after?: string; generation: number; task: { job: string; index: number; attempt: number } }
  | { type: 'abort'; id: number; reason: string }

const { moduleUrl, dbPath, guard, queryTimeoutMs } = workerData as { moduleUrl: string; dbPath: string; guard: Int32Array; queryTimeoutMs: number }
/** Mirrors threadState in executor.ts (not imported: this module runs in the thread). */
const idle = 0
const inSqlite = 1
const port = parentPort!
const handlers = new Map<string, Handler>()
const runs = new Map<number, AbortController>()
let connection: Connection | undefined
let watched: WatchedConnection | undefined
let connectionGeneration = -1

try {
  const module = (await import(moduleUrl)) as Record<string, unknown>
  const exported = typeof module['default'] === 'object' && module['default'] !== null ? { ...(module['default'] as Record<string, unknown>), ...module } : module
  for (const [name, value] of Object.entries(exported)) if (typeof value === 'function' && name !== 'default') handlers.set(name, value as Handler)
  port.postMessage({ type: 'ready', handlers: [...handlers.keys()] })
} catch (error) {
  port.postMessage({ type: 'broken', message: error instanceof Error ? error.message : String(error) })
}

function database(generation: number) {
  const open = (): Connection => {
    if (connection === undefined || connectionGeneration !== generation) {
      Atomics.store(guard, 2, 0)
      connection?.close()
      connection = openConnection(dbPath, { readOnly: true, valueBytesMax, extensions: true })
      watched = watchConnection(connection, queryTimeoutMs)
      Atomics.store(guard, 2, watched?.id ?? 0)
      connectionGeneration = generation
    }
    return connection
  }
  return {
    get: (sql: string, ...params: unknown[]): unknown => inSqliteCall(() => open().prepare(sql).get(...params)),
    all: (sql: string, ...params: unknown[]): unknown[] => inSqliteCall(() => open().prepare(sql).all(...params)),
  }
}

/**
 * Marks the thread as inside SQLite for the call: the main thread never terminates it then (that
 * would abort the process). Once the main thread has marked it killed, no call starts.
 */
function inSqliteCall<T>(fn: () => T): T {
  if (Atomics.load(guard, 1) === 1 || Atomics.compareExchange(guard, 0, idle, inSqlite) !== idle) throw new Error('this task was stopped')
  try {
    return fn()
  } catch (error) {
    const reason = watched?.stopReasonOf(error)
    if (reason === 'time-limit') throw new Error(`query timeout: a ctx.db statement ran past --query-timeout (${queryTimeoutMs} ms) and was stopped`)
    if (reason === 'result-too-large') throw new Error(resultTooLargeError())
    if (reason !== undefined) throw new Error('this task was stopped')
    throw error
  } finally {
    Atomics.store(guard, 0, idle)
  }
}

async function run(message: Extract<FromMain, { type: 'run' }>): Promise<void> {
  const controller = new AbortController()
  runs.set(message.id, controller)
  try {
    const handler = handlers.get(message.name)
    if (handler === undefined) throw new Error(`this replica has no handler named ${message.name}`)
    const ctx = {
      db: database(message.generation),
      signal: controller.signal,
      task: message.task,
      // The results of the jobs this one runs after, by job id, each in input order.
      after: message.after === undefined ? {} : (JSON.parse(message.after) as Record<string, unknown[]>),
      progress: (value: unknown) => port.postMessage({ type: 'progress', id: message.id, value: value ?? null }),
    }
    const value = await handler(JSON.parse(message.input), ctx)
    let json: string
    try {
      json = JSON.stringify(value ?? null)
    } catch (error) {
      throw new Error(`the handler's result is not JSON: ${error instanceof Error ? error.message : String(error)}`)
    }
    port.postMessage({ type: 'done', id: message.id, ok: true, value: json })
  } catch (error) {
    const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
    port.postMessage({ type: 'done', id: message.id, ok: false, error: text })
  } finally {
    runs.delete(message.id)
  }
}

port.on('message', (message: FromMain) => {
  if (message.type === 'abort') runs.get(message.id)?.abort(new Error(message.reason))
  else void run(message)
})
