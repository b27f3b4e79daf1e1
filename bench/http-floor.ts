/**
 * The HTTP floor: a minimal node:http server in a process of its own (as a Tandem node is) that
 * reads the request body and answers a fixed JSON: by default of the size and shape of a Tandem
 * write response, or the body given (a read's answer, for the read figures); on one process, or
 * on several sharing the port (node:cluster, the kernel spreading the connections). No framework,
 * no parsing, no database: what the same client, connections and machine can do at best.
 */
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import type { Resources } from './resources.ts'

const source = `
const cluster = require('node:cluster')
const processes = Number(process.env.TANDEM_FLOOR_PROCESSES || 1)
if (processes > 1 && cluster.isPrimary) {
  // The kernel spreads the connections over the processes: the best case for node:http.
  cluster.schedulingPolicy = cluster.SCHED_NONE
  let ready = 0
  for (let i = 0; i < processes; i++) {
    cluster.fork().on('message', (url) => {
      if (++ready === processes) process.stdout.write('ready ' + url + '\\n')
    })
  }
  cluster.on('exit', () => process.exit(1))
} else {
const http = require('node:http')
const https = require('node:https')
const fs = require('node:fs')
const body = process.env.TANDEM_FLOOR_BODY || JSON.stringify({ results: [{ last_insert_id: 123456, rows_affected: 1 }], lsn: 123456 })
const tls = process.env.TANDEM_FLOOR_CERT ? { cert: fs.readFileSync(process.env.TANDEM_FLOOR_CERT), key: fs.readFileSync(process.env.TANDEM_FLOOR_KEY) } : undefined
const server = (tls ? https.createServer.bind(https, tls) : http.createServer)((request, response) => {
  request.on('data', () => {})
  request.on('end', () => {
    response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
    response.end(body)
  })
})
server.keepAliveTimeout = 72000
server.listen(0, '127.0.0.1', () => {
  const url = (tls ? 'https' : 'http') + '://127.0.0.1:' + server.address().port
  if (cluster.isWorker) process.send(url)
  else process.stdout.write('ready ' + url + '\\n')
})
}
`

/** A server the bench runs in a process of its own (the floor, the stack's ceiling). */
export interface ScriptServer {
  url: string
  stop(): Promise<void>
}

/** The run's root goes on the command line so a cleanup sweep can find the process. */
/** `tls`: serve HTTPS with this certificate and key (PEM files) instead of HTTP. */
/** `processes` > 1: that many node:http processes (node:cluster) share the port, as a node's HTTP workers do. */
export function startHttpFloor(resources: Resources, body?: string, tls?: { cert: string; key: string }, processes = 1): Promise<ScriptServer> {
  const env: NodeJS.ProcessEnv = { ...process.env, TANDEM_FLOOR_PROCESSES: String(processes) }
  if (body !== undefined) env['TANDEM_FLOOR_BODY'] = body
  if (tls !== undefined) Object.assign(env, { TANDEM_FLOOR_CERT: tls.cert, TANDEM_FLOOR_KEY: tls.key })
  return startScriptServer(resources, tls === undefined ? 'http-floor' : 'https-floor', source, env)
}

/**
 * Runs `script` (CommonJS, from the project's root) in a node process of its own, until it
 * prints `ready <url>`; stop() SIGKILLs it.
 */
export function startScriptServer(resources: Resources, name: string, script: string, env: NodeJS.ProcessEnv): Promise<ScriptServer> {
  const child = resources.child(spawn(process.execPath, ['-e', script, resources.root], { stdio: ['ignore', 'pipe', 'inherit'], env }), name)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the ${name} server did not start in 10 s`)), 10_000)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`the ${name} server exited (${code ?? signal}) before it was ready`))
    })
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /^ready (\S+)/.exec(line)
      if (match === null) return
      clearTimeout(timer)
      resolve({
        url: match[1]!,
        stop: async () => {
          if (child.exitCode !== null || child.signalCode !== null) return
          const exited = new Promise((done) => child.once('exit', done))
          child.kill('SIGKILL')
          await exited
        },
      })
    })
  })
}
