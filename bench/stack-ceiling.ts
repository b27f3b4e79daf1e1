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
 */
import { startScriptServer, type ScriptServer } from './http-floor.ts'
import type { Resources } from './resources.ts'

const source = `
const http = require('node:http')
const { DatabaseSync } = require('@photostructure/sqlite')
const [path, readOnly] = [process.env.TANDEM_CEILING_DB, process.env.TANDEM_CEILING_READONLY === '1']
const db = new DatabaseSync(path, { readOnly })
if (!readOnly) {
  db.exec('PRAGMA journal_mode = WAL')
  db.exec('PRAGMA synchronous = FULL')
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
const answer = (response, status, body) => {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
  response.end(body)
}
let queue = []
let lsn = 0
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
  batch.forEach(({ response }, i) => answer(response, 200, JSON.stringify({ results: [results[i]], lsn })))
}
const server = http.createServer((request, response) => {
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

/**
 * Starts the ceiling on the SQLite file at `dbPath`: its own file for writes (created), or a
 * Tandem node's file opened read-only for reads.
 */
export function startStackCeiling(resources: Resources, dbPath: string, mode: 'write' | 'read'): Promise<ScriptServer> {
  const env = { ...process.env, TANDEM_CEILING_DB: dbPath, TANDEM_CEILING_READONLY: mode === 'read' ? '1' : '0' }
  return startScriptServer(resources, 'stack-ceiling', source, env)
}
