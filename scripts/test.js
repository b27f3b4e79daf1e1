#!/usr/bin/env node
// Runs every *.test.ts under the given folders with node's test runner (Node 20's --test has no
// globs). Files run one at a time: cluster tests start real processes and share the two cores.
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'

const roots = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['src', 'tests']
const files = roots
  .flatMap((root) => (statSync(root).isFile() ? [root] : readdirSync(root, { recursive: true }).map((f) => join(root, String(f)))))
  .filter((f) => f.endsWith('.test.ts'))
  .sort()
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], { stdio: 'inherit' })
process.exit(result.status ?? 1)
