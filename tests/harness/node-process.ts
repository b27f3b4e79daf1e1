/**
 * A real `tandem` process for tests: spawned from the built bin on port 0 with a temporary data
 * directory, ready when it prints its ready line; killed, paused and restarted like a real one.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { nodeFlags } from '../../src/cli/node-flags.ts'

const bin = fileURLToPath(new URL('../../bin/tandem.js', import.meta.url))

export interface NodeSpec {
  role: 'master' | 'replica'
  dataDir: string
  masterUrl?: string
  port?: number
  args?: string[]
  /** Extra environment variables for the process (e.g. TANDEM_UNSAFE_DISABLE_FENCING=1). */
  env?: Record<string, string>
  /** Runs the process in this network namespace (tests/harness/netns.ts): a machine of its own. */
  netns?: string
}

/** What a restart may change: a killed master comes back as a replica of the new one, for instance. */
export type NodeChanges = Partial<Pick<NodeSpec, 'role' | 'masterUrl' | 'args' | 'env'>>

export class NodeProcess {
  readonly spec: NodeSpec
  url = ''
  id = ''
  child: ChildProcess | undefined
  /** Everything the node wrote on stderr (its JSON log), for failure messages. */
  log: string[] = []
  /** True between pause() and resume(). */
  isPaused = false

  private constructor(spec: NodeSpec) {
    this.spec = spec
  }

  static async start(spec: NodeSpec): Promise<NodeProcess> {
    const node = new NodeProcess(spec)
    await node.launch(spec.port ?? 0)
    return node
  }

  get port(): number {
    return Number(new URL(this.url).port)
  }

  private launch(port: number): Promise<void> {
    // Anti-entropy checks are entries of their own: off unless a test asks (a later flag wins), so
    // that the LSNs a test counts are its writes'.
    const args = [bin, this.spec.role, '--data', this.spec.dataDir, '--port', String(port), '--check-interval', '0', ...(this.spec.args ?? [])]
    if (this.spec.role === 'replica' && this.spec.masterUrl !== undefined) args.push('--master', this.spec.masterUrl)
    const env = { ...process.env, TANDEM_LOG_LEVEL: 'info', ...this.spec.env }
    // The V8 flags the bin gives every node (its first line), as `tandem master` would run.
    // `ip netns exec` enters the namespace and execs node: the child's pid is the node's.
    const command = this.spec.netns === undefined ? [process.execPath] : ['ip', 'netns', 'exec', this.spec.netns, process.execPath]
    const child = spawn(command[0]!, [...command.slice(1), ...nodeFlags, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
    this.child = child
    this.isPaused = false
    createInterface({ input: child.stderr }).on('line', (line) => {
      this.log.push(line)
      if (this.log.length > 2000) this.log.shift()
    })
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`${this.spec.role} did not become ready in 20 s:\n${this.log.slice(-20).join('\n')}`))
      }, 20_000)
      createInterface({ input: child.stdout }).on('line', (line) => {
        const match = /^tandem \w+ ready (\S+) id=(\S+)/.exec(line)
        if (match !== null) {
          clearTimeout(timer)
          this.url = match[1]!
          this.id = match[2]!
          resolve()
        }
      })
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`${this.spec.role} exited (${code ?? signal}) before it was ready:\n${this.log.slice(-20).join('\n')}`))
      })
    })
  }

  /**
   * Sends a signal and waits for the process to exit, and for its HTTP workers (its child
   * processes, which exit when it is gone) to be gone too: a test that removes the data
   * directory next must not race a worker still reading in it.
   */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const workers = child.pid === undefined ? [] : childPids(child.pid)
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    if (signal !== 'SIGKILL') child.kill('SIGCONT')
    child.kill(signal)
    await exited
    const deadline = Date.now() + 10_000
    while (workers.some(isAlive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  }

  /** True while the process has not exited. */
  get isRunning(): boolean {
    const child = this.child
    return child !== undefined && child.exitCode === null && child.signalCode === null
  }

  pause(): void {
    this.child?.kill('SIGSTOP')
    this.isPaused = true
  }

  resume(): void {
    this.child?.kill('SIGCONT')
    this.isPaused = false
  }

  /**
   * Starts the process again on the same data directory and the same port; `changes` alter
   * how it starts from then on (a deposed master restarted as a replica of the new one).
   */
  async restart(changes: NodeChanges = {}): Promise<void> {
    await this.kill('SIGKILL')
    Object.assign(this.spec, changes)
    await this.launch(this.port)
  }
}

/** The processes whose parent is `pid` (Linux /proc; none elsewhere). */
function childPids(pid: number): number[] {
  try {
    return readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .filter((entry) => {
        try {
          return readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]?.split(' ')[1] === String(pid)
        } catch {
          return false
        }
      })
      .map(Number)
  } catch {
    return []
  }
}

/** Running or stopped; a zombie (exited, not yet reaped) is gone. */
function isAlive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z'
  } catch {
    return false
  }
}
