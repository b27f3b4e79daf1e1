import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const folder = fileURLToPath(new URL('.', import.meta.url))

test('the client imports only its own folder, shared/, node built-ins and undici', () => {
  const allowed = (specifier: string) => /^\.\/[\w-]+\.ts$/.test(specifier) || /^\.\.\/shared\/[\w-]+\.ts$/.test(specifier) || specifier.startsWith('node:') || specifier === 'undici'
  const offenders: string[] = []
  for (const file of readdirSync(folder).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))) {
    const source = readFileSync(`${folder}${file}`, 'utf8')
    for (const match of source.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g)) {
      const specifier = match[1] ?? match[2]!
      if (!allowed(specifier)) offenders.push(`${file}: ${specifier}`)
    }
  }
  assert.deepEqual(offenders, [])
})

test('shared/ modules the client imports pull in no server dependency', () => {
  const imported = new Set<string>()
  for (const file of readdirSync(folder).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))) {
    for (const match of readFileSync(`${folder}${file}`, 'utf8').matchAll(/from\s+'\.\.\/shared\/([\w-]+\.ts)'/g)) imported.add(match[1]!)
  }
  for (const file of imported) {
    const source = readFileSync(`${folder}../shared/${file}`, 'utf8')
    const specifiers = [...source.matchAll(/from\s+'([^']+)'/g)].map((m) => m[1]!)
    assert.deepEqual(specifiers.filter((s) => !s.startsWith('./') && !s.startsWith('node:')), [], `shared/${file} imports a package`)
  }
})
