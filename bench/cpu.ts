/**
 * Where the CPU went during a measurement, from /proc (Linux; elsewhere every figure here is
 * undefined): seconds a set of processes used, and how busy the whole machine was. On a 2-core
 * machine shared by the nodes and the load generator, "the machine was 97 % busy" is what says a
 * figure is bound by the cores rather than by Tandem's design.
 */
import { readFileSync } from 'node:fs'

/** USER_HZ: 100 on every Linux Node supports. */
const ticksPerSec = 100

/** Seconds of CPU (user + system) the processes used so far; undefined when one cannot be read. */
export function processCpuSeconds(pids: readonly (number | undefined)[]): number | undefined {
  try {
    let ticks = 0
    for (const pid of pids) {
      if (pid === undefined) return undefined
      // Fields after the parenthesized name: utime and stime are the 12th and 13th.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
      ticks += Number(fields[11]) + Number(fields[12])
    }
    return ticks / ticksPerSec
  } catch {
    return undefined
  }
}

/** The machine's CPU counters at one moment (jiffies, all cores together). */
export interface MachineCpu {
  busy: number
  total: number
}

export function machineCpu(): MachineCpu | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!
    // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
    const fields = line.trim().split(/\s+/).slice(1, 9).map(Number)
    const total = fields.reduce((sum, value) => sum + value, 0)
    const idle = fields[3]! + fields[4]!
    return { busy: total - idle, total }
  } catch {
    return undefined
  }
}

/** Share of every core's time spent busy between two readings: 0–1. */
export function busyFraction(before: MachineCpu | undefined, after: MachineCpu | undefined): number | undefined {
  if (before === undefined || after === undefined || after.total <= before.total) return undefined
  return (after.busy - before.busy) / (after.total - before.total)
}

/** Runs `work` and reports how busy the machine was meanwhile. */
export async function withMachineBusy<T>(work: () => Promise<T>): Promise<{ result: T; busy: number | undefined }> {
  const before = machineCpu()
  const result = await work()
  return { result, busy: busyFraction(before, machineCpu()) }
}
