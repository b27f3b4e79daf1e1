#!/usr/bin/env node
// Runs every *.test.ts under the given folders with node's test runner (Node 20's --test has no
// globs). Unit tests (under src/) run two files at a time: they run in-process and share nothing.
// Every other file runs one at a time: cluster tests start real processes, pause and kill them
// and race promotions against 1.5 s peer timeouts, on the machine's two cores; two such files at
// once made a promotion miss its votes in CI.
import { readdirSync, statSync } from 'node:fs'
import { join, sep } from 'node:path'
import { spawnSync } from 'node:child_process'

const roots = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['src', 'tests']
const files = roots
  .flatMap((root) => (statSync(root).isFile() ? [root] : readdirSync(root, { recursive: true }).map((f) => join(root, String(f)))))
  .filter((f) => f.endsWith('.test.ts'))
  .sort()
const isUnit = (file) => file.startsWith(`src${sep}`)
let failed = false
for (const [group, concurrency] of [[files.filter(isUnit), 2], [files.filter((f) => !isUnit(f)), 1]]) {
  if (group.length === 0) continue
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...group], { stdio: 'inherit' })
  if (result.status !== 0) failed = true
}
process.exit(failed ? 1 : 0)
