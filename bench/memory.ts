/**
 * Resident memory of every process the benchmark starts, from /proc/<pid>/status (Linux;
 * elsewhere nothing is recorded). VmHWM is the kernel's own high-water mark of a process's
 * resident set, so a peak between two samples is never missed while the process lives; sampling
 * every `intervalMs` only keeps the last value of a process that is then SIGKILLed (a peak in
 * its final interval could go unseen). VmRSS is the resident set now, for growth over a soak.
 */
import { readFileSync } from 'node:fs'
import { figure, type Figure } from './report.ts'

export type ProcessKind = 'master' | 'replica' | 'floor' | 'bench'

/** A process to watch; `pid` is read at each sample, so a restarted node is followed. */
export interface WatchedProcess {
  /** Stable across restarts, e.g. `cluster/replica1`. */
  label: string
  kind: ProcessKind
  pid: number | undefined
}

export interface RssPeak {
  label: string
  kind: ProcessKind
  peakMb: number
}

const mb = (kb: number) => kb / 1024

/** One field of /proc/<pid>/status in MB, or undefined (no such process, or not Linux). */
export function statusMb(pid: number | undefined, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number | undefined {
  if (pid === undefined) return undefined
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match === null ? undefined : mb(Number(match[1]))
  } catch {
    return undefined
  }
}

export class RssSampler {
  private readonly watched: () => WatchedProcess[]
  private readonly peaks = new Map<string, RssPeak>()
  private readonly timer: NodeJS.Timeout

  constructor(watched: () => WatchedProcess[], intervalMs = 250) {
    this.watched = watched
    this.timer = setInterval(() => this.sample(), intervalMs)
    this.timer.unref()
  }

  sample(): void {
    for (const process of this.watched()) {
      const peakMb = statusMb(process.pid, 'VmHWM')
      if (peakMb === undefined) continue
      const known = this.peaks.get(process.label)
      if (known === undefined || known.peakMb < peakMb) this.peaks.set(process.label, { label: process.label, kind: process.kind, peakMb })
    }
  }

  /** Every process's peak so far, largest first. */
  peaksMb(): RssPeak[] {
    this.sample()
    return [...this.peaks.values()].sort((a, b) => b.peakMb - a.peakMb)
  }

  stop(): void {
    clearInterval(this.timer)
  }
}

/**
 * The largest master and the largest replica of the run, beside the HTTP floor (a minimal
 * node:http server after 64-connection load): what Node itself costs on this machine.
 */
export function memoryFigures(peaks: readonly RssPeak[]): Figure[] {
  const floor = largest(peaks, 'floor')
  if (floor === undefined) throw new Error('the memory figures need the HTTP floor peak as their baseline')
  const baseline = { label: `the node:http floor's peak RSS after ${floorLoadText}`, unit: 'MB' as const, samples: [floor.peakMb] }
  return (['master', 'replica'] as const).flatMap((kind) => {
    const top = largest(peaks, kind)
    const count = peaks.filter((p) => p.kind === kind).length
    return top === undefined ? [] : [figure(`rss_peak_${kind}`, `Peak RSS, largest of the run's ${count} ${kind} processes (${top.label})`, 'MB', [top.peakMb], [baseline])]
  })
}

export const floorLoadText = '64-connection load'

export function memoryNote(peaks: readonly RssPeak[]): string {
  const nodes = peaks.filter((p) => p.kind === 'master' || p.kind === 'replica')
  const bench = peaks.find((p) => p.kind === 'bench')
  return (
    `Memory: peak RSS (VmHWM, read every 250 ms while each process lived) of every node the run started, in MB: ${nodes.length === 0 ? 'none (a part that reports its own peaks keeps its nodes out of this list)' : nodes.map((p) => `${p.label} ${p.peakMb.toFixed(0)}`).join(', ')}` +
    `${bench === undefined ? '' : `; the bench process itself (load generators, the in-process library master, the embedded replica) ${bench.peakMb.toFixed(0)}`}. ` +
    `Target: every node under 150 MB. One value per run: the peak rows show one sample, not a median.`
  )
}

function largest(peaks: readonly RssPeak[], kind: ProcessKind): RssPeak | undefined {
  return peaks.filter((p) => p.kind === kind).sort((a, b) => b.peakMb - a.peakMb)[0]
}
