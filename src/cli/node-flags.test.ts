import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { nodeFlags } from './node-flags.ts'

const bin = fileURLToPath(new URL('../../bin/tandem.js', import.meta.url))

test("the bin's first line is plain `env node`: BusyBox's env (Alpine) has no -S to carry flags", () => {
  const [first] = readFileSync(bin, 'utf8').split('\n')
  assert.equal(first, '#!/usr/bin/env node')
})

test('node takes the node flags, and they set what they say', () => {
  const semiSpace = nodeFlags.find((flag) => flag.startsWith('--max-semi-space-size='))
  assert.ok(semiSpace !== undefined)
  const megabytes = Number(semiSpace.split('=')[1])
  // V8 reports the young generation's semi-spaces: at most twice the flag once grown.
  const probe = `const v8 = require('node:v8'); const a = []; for (let i = 0; i < 2e6; i++) a.push({ i }); const s = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space'); console.log(s.space_size)`
  const result = spawnSync(process.execPath, [...nodeFlags, '-e', probe], { encoding: 'utf8' })
  assert.equal(result.status, 0, result.stderr)
  assert.ok(Number(result.stdout) <= 2 * megabytes * 1024 * 1024, `new space ${result.stdout.trim()} bytes`)
})
