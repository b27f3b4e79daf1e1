#!/usr/bin/env node
// Builds native/statement-guard.c, the SQLite extension that stops statements past their time
// limit (src/storage/statement-limits.ts), into build/. It is compiled against the sqlite3ext.h
// that ships with the SQLite binding, so it always matches the SQLite it is loaded into. Needs a
// C compiler (cc); without one Tandem still runs, with statement time limits off, and says so.
import { spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const binding = dirname(createRequire(import.meta.url).resolve('@photostructure/sqlite'))
const headers = join(binding, '..', 'src', 'upstream')
const out = join(root, 'build', process.platform === 'darwin' ? 'statement-guard.dylib' : 'statement-guard.so')
mkdirSync(dirname(out), { recursive: true })
const compiler = process.env.CC ?? 'cc'
const flags = process.platform === 'darwin' ? ['-dynamiclib', '-undefined', 'dynamic_lookup'] : ['-shared', '-fPIC']
const result = spawnSync(compiler, ['-O2', '-std=c11', '-Wall', '-Wextra', ...flags, '-I', headers, join(root, 'native', 'statement-guard.c'), '-o', out, '-lpthread'], { stdio: 'inherit' })
if (result.status !== 0) {
  console.warn(`warning: could not build ${out} with ${compiler}${result.error ? ` (${result.error.message})` : ''}: Tandem will run without statement time limits (--query-timeout). Install a C compiler and run npm run build.`)
}
