/**
 * `tandem shell URL`: an interactive SQL shell. Statements end with `;` and may span lines;
 * reads are answered by the node it is connected to, writes go to the master. Dot commands:
 * .tables, .schema [TABLE], .status, .help, .quit. History is kept in ~/.tandem_history.
 */
import { createInterface } from 'node:readline'
import { appendFileSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { CommandError, readJson, refusalOf, type NodeAccess } from './node-access.ts'
import { renderTable } from './table.ts'
import { printStatus } from './status.ts'

const historyFile = join(homedir(), '.tandem_history')

interface Result {
  columns?: string[]
  values?: unknown[][]
  rows_affected?: number
  last_insert_id?: number
  error?: string
}

/**
 * Runs statements on the node. An answer with results (SQL errors included) is returned to print;
 * a refusal (401, 403) or another error answer is thrown as a CommandError.
 */
async function request(access: NodeAccess, statements: string[]): Promise<{ results: Result[]; lsn?: number; error?: string }> {
  const response = await access.fetch(`${access.url}/db/request?level=none`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(statements),
    signal: AbortSignal.timeout(30_000),
  })
  const { body, text } = await readJson(response)
  if (response.status === 401 || response.status === 403 || !Array.isArray((body as { results?: unknown } | undefined)?.results)) throw refusalOf(response.status, body, text)
  return body as { results: Result[]; lsn?: number; error?: string }
}

export function formatResults(body: { results: Result[]; error?: string }): string {
  if (body.error !== undefined) return `error: ${body.error}`
  return body.results
    .map((r) => {
      if (r.error !== undefined) return `error: ${r.error}`
      if (r.columns !== undefined) {
        const rows = r.values ?? []
        return `${renderTable(r.columns, rows)}\n(${rows.length} row${rows.length === 1 ? '' : 's'})`
      }
      return `ok${r.rows_affected === undefined ? '' : `, ${r.rows_affected} row${r.rows_affected === 1 ? '' : 's'} affected`}${r.last_insert_id === undefined ? '' : `, last insert id ${r.last_insert_id}`}`
    })
    .join('\n')
}

/** A dot command's output, or `quit` to leave. */
async function dotCommand(access: NodeAccess, line: string): Promise<{ quit: true } | string> {
  const [command, arg] = line.trim().split(/\s+/, 2)
  switch (command) {
    case '.quit':
    case '.exit':
      return { quit: true }
    case '.tables': {
      const body = await request(access, [`SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_tandem\\_%' ESCAPE '\\' ORDER BY name`])
      return (body.results[0]?.values ?? []).map((row) => String(row[0])).join('  ')
    }
    case '.schema': {
      const where = arg === undefined ? '' : ` AND tbl_name = '${arg.replace(/'/g, "''")}'`
      const body = await request(access, [`SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE '\\_tandem\\_%' ESCAPE '\\'${where} ORDER BY rowid`])
      return (body.results[0]?.values ?? []).map((row) => `${String(row[0])};`).join('\n')
    }
    case '.status':
      await printStatus(access)
      return ''
    case '.help':
      return '.tables            list tables and views\n.schema [TABLE]     show CREATE statements\n.status            cluster topology and lag\n.quit               leave'
    default:
      return `unknown command ${command}; try .help`
  }
}

export async function runShell(access: NodeAccess): Promise<void> {
  let history: string[] = []
  try {
    history = readFileSync(historyFile, 'utf8').split('\n').filter(Boolean).reverse().slice(0, 500)
  } catch {
    // No history yet.
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout, history, historySize: 500, terminal: process.stdin.isTTY })
  process.stdout.write(`connected to ${access.url}; statements end with ';', .help for commands\n`)
  let buffer = ''
  rl.setPrompt('tandem> ')
  rl.prompt()
  for await (const line of rl) {
    try {
      if (buffer === '' && line.trim().startsWith('.')) {
        const out = await dotCommand(access, line)
        if (typeof out !== 'string') break
        if (out !== '') process.stdout.write(`${out}\n`)
      } else {
        buffer += (buffer === '' ? '' : '\n') + line
        if (buffer.trim().endsWith(';')) {
          const sql = buffer.trim()
          buffer = ''
          try {
            appendFileSync(historyFile, `${sql.replace(/\n/g, ' ')}\n`)
          } catch {
            // History is a convenience.
          }
          process.stdout.write(`${formatResults(await request(access, [sql]))}\n`)
        }
      }
    } catch (error) {
      if (error instanceof CommandError && error.code === 'UNAUTHORIZED') {
        // Every statement would be refused the same way: stop, and exit non-zero.
        rl.close()
        throw error
      }
      // A statement the user may not run (FORBIDDEN): the shell goes on, and exits non-zero at the end.
      if (error instanceof CommandError) process.exitCode = 1
      process.stdout.write(`error${error instanceof CommandError ? ` (${error.code})` : ''}: ${error instanceof Error ? error.message : String(error)}\n`)
    }
    rl.setPrompt(buffer === '' ? 'tandem> ' : '   ...> ')
    rl.prompt()
  }
  rl.close()
}
