/**
 * `npm run test:faults`: runs every tests/faults/**\/*.test.ts with node's test runner, one file
 * at a time (they start real processes and share two cores), the checker's unit tests first;
 * then prints the table of every scenario that ran. One seed for the whole run: the one in
 * TANDEM_FAULT_SEED, else a random one, printed first.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { renderTable, type ScenarioRow } from './scenario-report.ts'

const suiteMsMax = 10 * 60_000

const here = dirname(fileURLToPath(import.meta.url))
const files = readdirSync(here, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.test.ts'))
  .sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b))
  .map((f) => relative(process.cwd(), join(here, f)))

const seed = process.env['TANDEM_FAULT_SEED'] ?? String(Math.floor(Math.random() * 2 ** 31))
const reportDir = mkdtempSync(join(tmpdir(), 'tandem-faults-'))
const reportFile = join(reportDir, 'rows.jsonl')
process.stdout.write(`fault suite: ${files.length} files, seed ${seed} (rerun with TANDEM_FAULT_SEED=${seed})\n`)

const started = Date.now()
// Its own process group, so that a suite over its time is stopped with every node it started.
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], {
  stdio: 'inherit',
  detached: true,
  env: { ...process.env, TANDEM_FAULT_SEED: seed, TANDEM_FAULTS_REPORT: reportFile },
})
const stopAll = () => {
  try {
    process.kill(-child.pid!, 'SIGKILL')
  } catch {
    // Already gone.
  }
}
const deadline = setTimeout(() => {
  process.stderr.write(`fault suite: over ${suiteMsMax / 60_000} minutes, stopping it\n`)
  stopAll()
}, suiteMsMax)
process.on('SIGINT', stopAll)
process.on('SIGTERM', stopAll)

child.on('exit', (code) => {
  clearTimeout(deadline)
  let rows: ScenarioRow[] = []
  try {
    rows = readFileSync(reportFile, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as ScenarioRow)
    rows.sort((a, b) => a.scenario.localeCompare(b.scenario, 'en', { numeric: true }))
  } catch {
    // No scenario finished.
  }
  rmSync(reportDir, { recursive: true, force: true })
  process.stdout.write(`\nfault suite: ${rows.length} scenario runs in ${((Date.now() - started) / 1000).toFixed(0)} s, seed ${seed}\n${renderTable(rows)}\n`)
  process.exit(code ?? 1)
})
