/**
 * `tandem demo`: a master and N replicas, each its own process, on this machine. Prints how to
 * use the cluster once every node is ready; Ctrl-C stops them all.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { nodeFlags } from './node-flags.ts'

const bin = fileURLToPath(new URL('../../bin/tandem.js', import.meta.url))
/** The replicas run the example handlers, so jobs work out of the box. */
const exampleHandlers = fileURLToPath(new URL('../../examples/handlers.js', import.meta.url))

function startNode(args: string[], name: string): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlags, bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    const lines = createInterface({ input: child.stdout })
    lines.on('line', (line) => {
      const match = /^tandem \w+ ready (\S+)/.exec(line)
      if (match !== null) resolve({ child, url: match[1]! })
    })
    const errors = createInterface({ input: child.stderr })
    errors.on('line', (line) => {
      try {
        const event = JSON.parse(line) as { level: number; msg: string }
        if (event.level >= 40) process.stderr.write(`[${name}] ${event.msg}\n`)
      } catch {
        process.stderr.write(`[${name}] ${line}\n`)
      }
    })
    child.once('exit', (code) => reject(new Error(`${name} exited with code ${code} before it was ready`)))
  })
}

/**
 * The demo's cluster secret, made once and kept with the data: nodes prove it to each other, so
 * a stray process on this machine cannot join the demo cluster or raise its epoch. There is no
 * --auth: clients need no credentials, as the banner's curl commands show.
 */
function clusterSecretFile(dir: string): string {
  const file = join(dir, 'cluster-secret')
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true })
    // 'wx': never overwrite a secret another demo wrote meanwhile (the nodes' data were made with it).
    writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' })
  }
  return file
}

export async function runDemo(options: { replicas: number; dir: string; port: number }): Promise<void> {
  const children: ChildProcess[] = []
  const stopAll = () => {
    for (const child of children) child.kill('SIGTERM')
  }
  process.on('SIGINT', () => {
    stopAll()
    process.exit(0)
  })
  process.on('SIGTERM', () => {
    stopAll()
    process.exit(0)
  })
  try {
    const secret = clusterSecretFile(options.dir)
    const master = await startNode(['master', '--data', join(options.dir, 'master'), '--port', String(options.port), '--cluster-secret-file', secret], 'master')
    children.push(master.child)
    const replicas: string[] = []
    for (let i = 1; i <= options.replicas; i++) {
      const name = `replica${i}`
      const replica = await startNode(
        ['replica', '--data', join(options.dir, name), '--port', String(options.port + i), '--master', master.url, '--jobs', exampleHandlers, '--cluster-secret-file', secret],
        name,
      )
      children.push(replica.child)
      replicas.push(replica.url)
    }
    const r = replicas[0] ?? master.url
    process.stdout.write(`
Tandem is running: a master and ${replicas.length} replica${replicas.length === 1 ? '' : 's'}, data under ${options.dir}

  master    ${master.url}
${replicas.map((url, i) => `  replica${i + 1}  ${url}`).join('\n')}
  secret    ${secret}: nodes prove it to each other (no --auth: clients need no credentials)

Try it:
  curl -s -XPOST '${master.url}/db/execute' -H 'Content-Type: application/json' \\
       -d '["CREATE TABLE fruit (id INTEGER PRIMARY KEY, name TEXT)", ["INSERT INTO fruit(name) VALUES (?)", "apple"]]'
  curl -s -G '${r}/db/query' --data-urlencode 'q=SELECT * FROM fruit' --data-urlencode 'level=none'
  curl -s -XPOST '${master.url}/jobs' -d '{"name": "wordCount", "inputs": ["one two", "three four five"]}'
  curl -s '${master.url}/jobs/ID/wait'        # the results, in input order
  npx tandem status ${master.url}
  npx tandem shell ${r}

Press Ctrl-C to stop.
`)
  } catch (error) {
    stopAll()
    throw error
  }
}
