#!/usr/bin/env node
// Builds Tandem's native parts into build/ with the C compiler (cc, or $CC):
//
//   tandem-sqlite.node   Tandem's SQLite binding (native/tandem-sqlite.c) over the SQLite
//                        amalgamation the published binding ships, with the same compile options.
//                        It captures tables without a PRIMARY KEY; src/storage/sqlite.ts says more.
//   statement-guard.so   the SQLite extension that stops statements past their time limit
//                        (src/storage/statement-limits.ts), built against the same sqlite3ext.h.
//   shared-memory.node   a file mapped into memory that processes share (native/shared-memory.c):
//                        what a node's HTTP workers read of its state (src/node/http-workers.ts).
//
// Each is rebuilt only when older than its sources, so `npm ci` compiles SQLite once (about a
// minute) and later builds take no time. Without a compiler or Node's headers Tandem still runs,
// on the published binding: tables without a PRIMARY KEY are then refused, and statement time
// limits are off. Both say so.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const binding = dirname(createRequire(import.meta.url).resolve('@photostructure/sqlite'))
const upstream = join(binding, '..', 'src', 'upstream')
const build = join(root, 'build')
const compiler = process.env.CC ?? 'cc'
const isMac = process.platform === 'darwin'
const shared = isMac ? ['-dynamiclib', '-undefined', 'dynamic_lookup'] : ['-shared']
const self = fileURLToPath(import.meta.url)

/** The published binding's own options (its binding.gyp), so both SQLites answer alike. */
const sqliteDefines = [
  'HAVE_STDINT_H=1', 'HAVE_USLEEP=1', 'SQLITE_DEFAULT_FOREIGN_KEYS=1', 'SQLITE_DEFAULT_MEMSTATUS=0',
  'SQLITE_DEFAULT_WAL_SYNCHRONOUS=1', 'SQLITE_DQS=0', 'SQLITE_ENABLE_COLUMN_METADATA', 'SQLITE_ENABLE_DBSTAT_VTAB',
  'SQLITE_ENABLE_FTS3_PARENTHESIS', 'SQLITE_ENABLE_FTS3', 'SQLITE_ENABLE_FTS4', 'SQLITE_ENABLE_FTS5',
  'SQLITE_ENABLE_GEOPOLY', 'SQLITE_ENABLE_JSON1', 'SQLITE_ENABLE_MATH_FUNCTIONS', 'SQLITE_ENABLE_NORMALIZE',
  'SQLITE_ENABLE_PERCENTILE', 'SQLITE_ENABLE_PREUPDATE_HOOK', 'SQLITE_ENABLE_RBU', 'SQLITE_ENABLE_RTREE',
  'SQLITE_ENABLE_SESSION', 'SQLITE_ENABLE_SNAPSHOT', 'SQLITE_ENABLE_STAT4', 'SQLITE_ENABLE_UPDATE_DELETE_LIMIT',
  'SQLITE_LIKE_DOESNT_MATCH_BLOBS', 'SQLITE_OMIT_DEPRECATED', 'SQLITE_OMIT_SHARED_CACHE', 'SQLITE_SOUNDEX', 'SQLITE_USE_URI=1',
].map((d) => `-D${d}`)

function nodeHeaders() {
  const candidates = [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node']
  return candidates.find((dir) => existsSync(join(dir, 'node_api.h')))
}

function isStale(target, sources) {
  if (!existsSync(target)) return true
  const built = statSync(target).mtimeMs
  return sources.some((source) => statSync(source).mtimeMs > built)
}

function run(args) {
  return new Promise((resolve) => {
    const child = spawn(compiler, args, { stdio: 'inherit' })
    child.on('error', (error) => resolve(error.message))
    child.on('exit', (code) => resolve(code === 0 ? undefined : `exit ${code}`))
  })
}

async function buildGuard() {
  const out = join(build, isMac ? 'statement-guard.dylib' : 'statement-guard.so')
  const source = join(root, 'native', 'statement-guard.c')
  if (!isStale(out, [source, self])) return
  const failure = await run(['-O2', '-std=c11', '-Wall', '-Wextra', ...shared, '-fPIC', '-I', upstream, source, '-o', out, '-lpthread'])
  if (failure !== undefined) {
    console.warn(`warning: could not build ${out} with ${compiler} (${failure}): Tandem will run without statement time limits (--query-timeout). Install a C compiler and run npm run build.`)
  }
}

async function buildSqlite() {
  const out = join(build, 'tandem-sqlite.node')
  const amalgamation = join(upstream, 'sqlite3.c')
  const addon = join(root, 'native', 'tandem-sqlite.c')
  const object = join(build, 'sqlite3.o')
  if (!isStale(out, [amalgamation, addon, self])) return
  const headers = nodeHeaders()
  const fallback = 'Tandem will run on the published SQLite binding, which refuses tables without a PRIMARY KEY.'
  if (headers === undefined) {
    console.warn(`warning: Node's headers (node_api.h) were not found beside ${process.execPath}: ${fallback}`)
    return
  }
  const common = ['-O2', '-fPIC', '-fvisibility=hidden', '-I', upstream, ...sqliteDefines]
  if (isStale(object, [amalgamation, self])) {
    process.stdout.write('building SQLite for Tandem (about a minute, once)\n')
    const failure = await run([...common, '-Wno-implicit-fallthrough', '-c', amalgamation, '-o', object])
    if (failure !== undefined) {
      console.warn(`warning: could not compile SQLite with ${compiler} (${failure}): ${fallback}`)
      return
    }
  }
  const failure = await run([...common, '-std=c11', '-Wall', '-Wextra', '-I', headers, ...shared, addon, object, '-o', out, '-lm', '-lpthread'])
  if (failure !== undefined) console.warn(`warning: could not build ${out} with ${compiler} (${failure}): ${fallback}`)
}

async function buildSharedMemory() {
  const out = join(build, 'shared-memory.node')
  const source = join(root, 'native', 'shared-memory.c')
  if (!isStale(out, [source])) return
  const headers = nodeHeaders()
  const fallback = 'each node will answer HTTP on its main process alone (--http-workers 1).'
  if (headers === undefined) {
    console.warn(`warning: Node's headers (node_api.h) were not found beside ${process.execPath}: ${fallback}`)
    return
  }
  const failure = await run(['-O2', '-std=c11', '-Wall', '-Wextra', '-fPIC', '-fvisibility=hidden', '-I', headers, ...shared, source, '-o', out])
  if (failure !== undefined) console.warn(`warning: could not build ${out} with ${compiler} (${failure}): ${fallback}`)
}

mkdirSync(build, { recursive: true })
await Promise.all([buildGuard(), buildSqlite(), buildSharedMemory()])
