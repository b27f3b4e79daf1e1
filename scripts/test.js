#!/usr/bin/env node
// Runs every *.test.ts under the given folders with node's test runner (Node 20's --test has no
// globs). Two files run at a time: a cluster test spends most of its time waiting on its own
// processes (starting, syncing, being killed), so two share the machine's cores without either
// starving; tests assert outcomes, never timings. `--serial` runs one file at a time (the etcd
// suite, whose network-namespace test owns the machine's namespaces while it runs).
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'

const args = process.argv.slice(2)
const serial = args.includes('--serial')
const given = args.filter((a) => a !== '--serial')
const roots = given.length > 0 ? given : ['src', 'tests']
const files = roots
  .flatMap((root) => (statSync(root).isFile() ? [root] : readdirSync(root, { recursive: true }).map((f) => join(root, String(f)))))
  .filter((f) => f.endsWith('.test.ts'))
  .sort()
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${serial ? 1 : 2}`, ...files], { stdio: 'inherit' })
process.exit(result.status ?? 1)
