/**
 * Everything the benchmark starts — processes, in-process nodes, temporary directories — so it
 * can all be stopped when a step fails or the run is interrupted, not only when it succeeds.
 *
 * Every data directory lives under one fresh `root` in os.tmpdir(), and every process the run
 * spawns carries that path on its command line. `close()` kills the processes it knows, then
 * sweeps /proc for any process whose command line names `root` (a node that failed to become
 * ready is never handed back by NodeProcess.start, so it would otherwise be orphaned), then
 * deletes `root`.
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import type { NodeProcess } from '../tests/harness/node-process.ts'
import type { WatchedProcess } from './memory.ts'

export class Resources {
  readonly root: string
  private readonly nodes = new Set<NodeProcess>()
  private readonly children = new Map<ChildProcess, string>()
  private readonly closers: (() => Promise<void>)[] = []
  private closed = false

  constructor() {
    this.root = mkdtempSync(join(tmpdir(), 'tandem-bench-'))
  }

  /** A path under the run's root (not created). */
  path(...parts: string[]): string {
    return join(this.root, ...parts)
  }

  node(node: NodeProcess): NodeProcess {
    this.nodes.add(node)
    return node
  }

  /** `label` names it in the memory report (an HTTP floor, say). */
  child(child: ChildProcess, label = 'child'): ChildProcess {
    this.children.set(child, label)
    return child
  }

  /** Every process started so far, for the memory report; a node is named by its data directory. */
  processes(): WatchedProcess[] {
    const nodes = [...this.nodes].map((node): WatchedProcess => ({ label: relative(this.root, node.spec.dataDir), kind: node.spec.role, pid: node.child?.pid }))
    const children = [...this.children].map(([child, label]): WatchedProcess => ({ label: `${label} (pid ${child.pid})`, kind: 'floor', pid: child.pid }))
    return [...nodes, ...children]
  }

  /** Runs `close` (e.g. stopping an in-process node) before processes are killed. */
  onClose(close: () => Promise<void>): void {
    this.closers.push(close)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const close of this.closers.reverse()) {
      try {
        await withTimeout(close(), 5000)
      } catch (error) {
        process.stderr.write(`bench: cleanup step failed: ${String(error)}\n`)
      }
    }
    await Promise.all([...this.nodes].map((n) => withTimeout(n.kill('SIGKILL'), 5000).catch(() => undefined)))
    this.killNow()
  }

  /**
   * Synchronous last resort, safe inside process.on('exit'): SIGKILL to every known child and to
   * any process naming the root, then delete the root.
   */
  killNow(): void {
    for (const node of this.nodes) kill(node.child?.pid)
    for (const child of this.children.keys()) kill(child.pid)
    for (const pid of processesNaming(this.root)) kill(pid)
    rmSync(this.root, { recursive: true, force: true })
  }
}

function kill(pid: number | undefined): void {
  if (pid === undefined || pid === process.pid) return
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // Already gone.
  }
}

/** Processes whose command line contains `marker` (Linux /proc; elsewhere, none are found). */
function processesNaming(marker: string): number[] {
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return []
  }
  const found: number[] = []
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) found.push(Number(entry))
    } catch {
      // The process exited while we looked.
    }
  }
  return found
}

export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
