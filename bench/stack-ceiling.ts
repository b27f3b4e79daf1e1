/**
 * The stack's ceiling: the least a server on this stack (Node's `node:http` and the same SQLite
 * binding) can do for the same request, in a process of its own. A write is parsed from the
 * same JSON body and group-committed like Tandem's (every request that arrived in one turn of
 * the event loop in one transaction, WAL, synchronous=FULL), answered with the same JSON shape; a
 * read runs the query string's SELECT on the main thread and answers columns, types and values.
 * No log, no replicas, no savepoints, no validation, no framework.
 *
 * It places the floor targets: Tandem ÷ ceiling is what Tandem's own work costs; ceiling ÷ floor
 * is what any server that parses, runs SQLite and answers JSON can reach on these cores.
 *
 * With replicas (the targets are measured with two attached): after each commit, and before it
 * answers, the ceiling writes the batch's statements as one line to every replica that asked
 * for them (`GET /replicate`, an endless response); a replica runs every complete line it has
 * received in one transaction of its own (WAL, synchronous=NORMAL, as Tandem's replicas apply).
 * No log, no acknowledgements, no checksums: the least that keeps two copies on the same cores.
 */
import { DatabaseSync } from '@photostructure/sqlite'
import { setTimeout as sleep } from 'node:timers/promises'
import { startScriptServer, type ScriptServer } from './http-floor.ts'
import type { Resources } from './resources.ts'

/** Both ceilings' opening: the file (read-only for reads), and statements prepared once. */
const opening = (synchronous: 'FULL' | 'NORMAL') => `
const http = require('node:http')
const { DatabaseSync } = require('@photostructure/sqlite')
const readOnly = process.env.TANDEM_CEILING_READONLY === '1'
const db = new DatabaseSync(process.env.TANDEM_CEILING_DB, { readOnly })
if (!readOnly) {
  db.exec('PRAGMA journal_mode = WAL')
  db.exec('PRAGMA synchronous = ${synchronous}')
  db.exec('CREATE TABLE IF NOT EXISTS bench (id INTEGER PRIMARY KEY, payload TEXT)')
}
const statements = new Map()
const prepare = (sql) => {
  let statement = statements.get(sql)
  if (statement === undefined) statements.set(sql, statement = db.prepare(sql))
  return statement
}
const begin = readOnly ? undefined : db.prepare('BEGIN IMMEDIATE')
const commit = readOnly ? undefined : db.prepare('COMMIT')
`

const source = `${opening('FULL')}
const answer = (response, status, body) => {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
  response.end(body)
}
let queue = []
let lsn = 0
const replicas = new Set()
const runBatch = () => {
  const batch = queue
  queue = []
  begin.run()
  const results = batch.map(({ statement }) => {
    try {
      const [sql, ...params] = statement
      const r = prepare(sql).run(...params)
      return { last_insert_id: Number(r.lastInsertRowid), rows_affected: Number(r.changes) }
    } catch (error) {
      return { error: String(error.message) }
    }
  })
  commit.run()
  lsn++
  if (replicas.size > 0) {
    const line = JSON.stringify(batch.filter((_, i) => results[i].error === undefined).map(({ statement }) => statement)) + '\\n'
    for (const replica of replicas) replica.write(line)
  }
  batch.forEach(({ response }, i) => answer(response, 200, JSON.stringify({ results: [results[i]], lsn })))
}
const server = http.createServer((request, response) => {
  if (request.method === 'GET' && request.url === '/replicate') {
    response.writeHead(200, { 'content-type': 'application/x-ndjson' })
    response.flushHeaders()
    replicas.add(response)
    response.on('close', () => replicas.delete(response))
    return
  }
  if (request.method === 'GET') {
    request.resume()
    const q = new URLSearchParams(request.url.slice(request.url.indexOf('?') + 1)).get('q')
    const statement = prepare(q)
    statement.setReturnArrays(true)
    const columns = statement.columns()
    const body = { results: [{ columns: columns.map((c) => c.name), types: columns.map((c) => (c.type || '').toLowerCase()), values: statement.all() }] }
    answer(response, 200, JSON.stringify(body))
    return
  }
  const chunks = []
  request.on('data', (chunk) => chunks.push(chunk))
  request.on('end', () => {
    const statements = JSON.parse(Buffer.concat(chunks).toString())
    if (queue.length === 0) setImmediate(runBatch)
    queue.push({ statement: statements[0], response })
  })
})
server.keepAliveTimeout = 72000
server.listen(0, '127.0.0.1', () => process.stdout.write('ready http://127.0.0.1:' + server.address().port + '\\n'))
`

const replicaSource = `${opening('NORMAL')}
const masterUrl = process.env.TANDEM_CEILING_MASTER
let pending = ''
http.get(masterUrl + '/replicate', (response) => {
  response.setEncoding('utf8')
  response.on('data', (text) => {
    pending += text
    const end = pending.lastIndexOf('\\n')
    if (end < 0) return
    const lines = pending.slice(0, end).split('\\n')
    pending = pending.slice(end + 1)
    begin.run()
    for (const line of lines) for (const [sql, ...params] of JSON.parse(line)) prepare(sql).run(...params)
    commit.run()
  })
  response.on('end', () => process.exit(0))
  process.stdout.write('ready ' + masterUrl + '\\n')
}).on('error', (error) => { console.error(error); process.exit(1) })
`

/**
 * Starts the ceiling on the SQLite file at `dbPath`: its own file for writes (created), or a
 * Tandem node's file opened read-only for reads.
 */
export function startStackCeiling(resources: Resources, dbPath: string, mode: 'write' | 'read'): Promise<ScriptServer> {
  const env = { ...process.env, TANDEM_CEILING_DB: dbPath, TANDEM_CEILING_READONLY: mode === 'read' ? '1' : '0' }
  return startScriptServer(resources, 'stack-ceiling', source, env)
}

/**
 * Starts a ceiling replica of the ceiling at `masterUrl` on its own file at `dbPath` (created);
 * it is ready once the ceiling streams to it.
 */
export function startStackCeilingReplica(resources: Resources, dbPath: string, masterUrl: string): Promise<ScriptServer> {
  const env = { ...process.env, TANDEM_CEILING_DB: dbPath, TANDEM_CEILING_MASTER: masterUrl }
  return startScriptServer(resources, 'stack-ceiling-replica', replicaSource, env)
}

function rowCount(dbPath: string): number {
  const db = new DatabaseSync(dbPath, { readOnly: true })
  try {
    return Number((db.prepare('SELECT count(*) AS n FROM bench').get() as { n: number }).n)
  } finally {
    db.close()
  }
}

/** Throws unless every ceiling replica holds the ceiling's rows within `timeoutMs`: its figures count only writes the replicas really applied. */
export async function assertCeilingReplicated(masterDb: string, replicaDbs: readonly string[], timeoutMs = 10_000): Promise<void> {
  const expected = rowCount(masterDb)
  const deadline = Date.now() + timeoutMs
  for (const replicaDb of replicaDbs) {
    let held = rowCount(replicaDb)
    while (held !== expected && Date.now() < deadline) {
      await sleep(50)
      held = rowCount(replicaDb)
    }
    if (held !== expected) throw new Error(`a ceiling replica holds ${held} rows of the ceiling's ${expected}`)
  }
}
