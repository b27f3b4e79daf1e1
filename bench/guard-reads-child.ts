/**
 * Run by statement-guard.ts in a process of its own, with or without
 * TANDEM_UNSAFE_NO_STATEMENT_GUARD=1: point reads through LocalReads (the SQL policy, the
 * statement cache, the JSON answer, and the guard when it is loaded) on the database at argv[2],
 * on the calling thread with no HTTP around them. Prints µs per read.
 */
import { LocalReads } from '../src/node/local-reads.ts'
import { SchemaGeneration } from '../src/storage/index.ts'

const [path, countText] = process.argv.slice(2) as [string, string]
const reads = new LocalReads(path, new SchemaGeneration(), 30_000)
const format = { associative: false, timings: false, blobArray: false }
const statements = Array.from({ length: 128 }, (_, i) => [{ sql: `SELECT id, payload FROM bench WHERE id = ${i + 1}` }])
const count = Number(countText)
for (let i = 0; i < count / 4; i++) reads.queryJson(statements[i & 127]!, false, format)
const started = performance.now()
for (let i = 0; i < count; i++) reads.queryJson(statements[i & 127]!, false, format)
process.stdout.write(`${((performance.now() - started) * 1000) / count}\n`)
reads.close()
