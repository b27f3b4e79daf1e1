/**
 * A real one-member etcd for tests (Debian's `etcd-server`, 3.4): started on free loopback
 * ports in a temporary directory, ready when `/health` says so, killed and removed after.
 * `TANDEM_ETCD` names the binary when it is not `etcd` on the PATH.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './ports.ts'

const binary = process.env['TANDEM_ETCD'] ?? 'etcd'

export class Etcd {
  readonly url: string
  private readonly child: ChildProcess
  private readonly dir: string
  readonly log: string[] = []

  private constructor(url: string, child: ChildProcess, dir: string) {
    this.url = url
    this.child = child
    this.dir = dir
  }

  /** `host`: the address it listens on (127.0.0.1, or a test network's bridge). */
  static async start(host = '127.0.0.1'): Promise<Etcd> {
    const version = spawnSync(binary, ['--version'], { encoding: 'utf8' })
    if (version.error !== undefined || version.status !== 0) {
      throw new Error(`these tests need etcd 3.4 (${binary} did not run: ${version.error?.message ?? version.stderr}); on Debian: apt-get install etcd-server, or set TANDEM_ETCD`)
    }
    const dir = mkdtempSync(join(tmpdir(), 'tandem-etcd-'))
    const [client, peer] = [await freePort(), await freePort()]
    const url = `http://${host}:${client}`
    const peerUrl = `http://127.0.0.1:${peer}`
    const child = spawn(binary, [
      '--data-dir', join(dir, 'data'),
      '--listen-client-urls', url, '--advertise-client-urls', url,
      '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `default=${peerUrl}`,
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    const etcd = new Etcd(url, child, dir)
    child.stderr?.on('data', (chunk: Buffer) => {
      etcd.log.push(chunk.toString())
      if (etcd.log.length > 200) etcd.log.shift()
    })
    const deadline = Date.now() + 20_000
    while (Date.now() < deadline) {
      if (child.exitCode !== null) break
      try {
        const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) })
        if (((await response.json()) as { health?: string }).health === 'true') return etcd
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    await etcd.stop()
    throw new Error(`etcd did not become healthy in 20 s:\n${etcd.log.join('').slice(-2000)}`)
  }

  /** The value of `key` as Tandem wrote it (JSON), or undefined. */
  async get(key: string): Promise<Record<string, unknown> | undefined> {
    const response = await fetch(`${this.url}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from(key).toString('base64') }) })
    const body = (await response.json()) as { kvs?: { value: string }[] }
    const value = body.kvs?.[0]?.value
    return value === undefined ? undefined : (JSON.parse(Buffer.from(value, 'base64').toString()) as Record<string, unknown>)
  }

  /** Writes `value` (as is) at `key`, on no lease: what a careless or hostile etcd user could do. */
  async put(key: string, value: string): Promise<void> {
    await fetch(`${this.url}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: Buffer.from(key).toString('base64'), value: Buffer.from(value).toString('base64') }) })
  }

  async delete(key: string): Promise<void> {
    await fetch(`${this.url}/v3/kv/deleterange`, { method: 'POST', body: JSON.stringify({ key: Buffer.from(key).toString('base64') }) })
  }

  pause(): void {
    this.child.kill('SIGSTOP')
  }

  resume(): void {
    this.child.kill('SIGCONT')
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve))
      this.child.kill('SIGKILL')
      await exited
    }
    rmSync(this.dir, { recursive: true, force: true })
  }
}
