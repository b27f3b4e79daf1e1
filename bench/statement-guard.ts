/**
 * What stopping statements costs: the same cluster (a master and 2 replicas, synchronous=full)
 * with the statement guard (native/statement-guard.c: a progress handler and a statement-start
 * trace on every client connection, --query-timeout 30s, the default) beside one started with
 * TANDEM_UNSAFE_NO_STATEMENT_GUARD=1, back to back in each repetition: 64-connection HTTP writes
 * on the master and point reads on a replica (paired-clusters.ts).
 *
 * Estimate before measuring: the trace callback reads the clock once per statement (~25 ns via
 * the vDSO); the progress handler runs every 1000 VM steps, which a point read or a one-row
 * INSERT never reaches; a read thread stores the read's id in a shared word before and after it.
 * Against ~20–40 µs of CPU per request: ~0.99×, within the noise.
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { databasePath } from '../src/storage/index.ts'
import { measurePair, pointReadIds, startPairedCluster, type PairResult, type PairSettings } from './paired-clusters.ts'
import { figure, type Figure } from './report.ts'
import type { Resources } from './resources.ts'

export type StatementGuardSettings = PairSettings
export interface StatementGuardResult extends PairResult<'guarded' | 'unguarded'> {
  /** µs per point read through LocalReads alone, in a process of its own, with and without the guard. */
  libraryReadUs: { guarded: number[]; unguarded: number[] }
}

const libraryReads = 200_000

/** One run of guard-reads-child.ts: µs per read. */
function libraryRead(dbPath: string, guarded: boolean): number {
  const child = fileURLToPath(new URL('./guard-reads-child.ts', import.meta.url))
  const env = { ...process.env, ...(guarded ? {} : { TANDEM_UNSAFE_NO_STATEMENT_GUARD: '1' }) }
  return Number(execFileSync(process.execPath, ['--import', 'tsx', child, dbPath, String(libraryReads)], { env, encoding: 'utf8' }).trim())
}

export async function measureStatementGuard(resources: Resources, s: StatementGuardSettings, log: (line: string) => void): Promise<StatementGuardResult> {
  const unguarded = await startPairedCluster(resources, { name: 'guard-off', args: [], env: { TANDEM_UNSAFE_NO_STATEMENT_GUARD: '1' }, headers: {}, dispatcher: undefined })
  const guarded = await startPairedCluster(resources, { name: 'guard-on', args: ['--query-timeout', '30s'], headers: {}, dispatcher: undefined })
  const pair = await measurePair(s, { guarded, unguarded }, (rep, r) =>
    log(`statement guard ${rep + 1}/${s.reps}: writes ${Math.round(r.writes.guarded.at(-1)!)} vs ${Math.round(r.writes.unguarded.at(-1)!)}/s, reads ${Math.round(r.reads.guarded.at(-1)!)} vs ${Math.round(r.reads.unguarded.at(-1)!)}/s`),
  )
  // The same reads without HTTP, the load generator or replication sharing the cores: what the
  // guard adds to one read, on a replica's database file (read-only; its node keeps running).
  const dbPath = databasePath(unguarded.replicas[1]!.spec.dataDir)
  const libraryReadUs = { guarded: [] as number[], unguarded: [] as number[] }
  for (let rep = 0; rep < s.reps; rep++) {
    for (const isGuarded of rep % 2 === 0 ? [true, false] : [false, true]) libraryReadUs[isGuarded ? 'guarded' : 'unguarded'].push(libraryRead(dbPath, isGuarded))
    log(`statement guard, library reads ${rep + 1}/${s.reps}: ${libraryReadUs.guarded.at(-1)!.toFixed(2)} vs ${libraryReadUs.unguarded.at(-1)!.toFixed(2)} µs`)
  }
  return { ...pair, libraryReadUs }
}

export function statementGuardFigures(r: StatementGuardResult, s: StatementGuardSettings): Figure[] {
  return [
    figure('guard_writes', `HTTP writes with statement time limits (--query-timeout 30s), ${s.connections} clients`, 'tx/s', r.writes.guarded, [
      { label: `the same cluster without the statement guard, ${s.connections} clients`, unit: 'tx/s', samples: r.writes.unguarded },
    ]),
    figure('guard_reads', `HTTP point reads on a replica with statement time limits, ${s.connections} connections`, 'reads/s', r.reads.guarded, [
      { label: `the same without the statement guard, ${s.connections} connections`, unit: 'reads/s', samples: r.reads.unguarded },
    ]),
    figure('guard_library_read', `A point read through the read path alone (SQL policy, statement cache, JSON answer) with the statement guard, ${libraryReads.toLocaleString('en')} reads per run`, 'µs', r.libraryReadUs.guarded, [
      { label: 'the same reads without the guard', unit: 'µs', samples: r.libraryReadUs.unguarded },
    ]),
    figure('guard_write_cpu', "The master's CPU per write with statement time limits", 'µs', r.writeCpuUs.guarded, [{ label: 'the same without the guard', unit: 'µs', samples: r.writeCpuUs.unguarded }]),
    figure('guard_read_cpu', "The replica's CPU per point read with statement time limits", 'µs', r.readCpuUs.guarded, [{ label: 'the same without the guard', unit: 'µs', samples: r.readCpuUs.unguarded }]),
  ]
}

export function statementGuardNote(s: StatementGuardSettings): string {
  return `Statement guard: two clusters of a master and 2 replicas (synchronous=full), one with Tandem's statement guard loaded on every client connection (--query-timeout 30s), the other started with TANDEM_UNSAFE_NO_STATEMENT_GUARD=1 (no extension loaded: statements cannot be stopped); autocannon with ${s.connections} keep-alive connections, ${s.seconds} s per run, alternating first in each repetition. Writes: one-row INSERTs on the master. Reads: point reads by primary key over ${pointReadIds} ids on the first replica, level=none. CPU per request: the serving node's user + system time (/proc) over the run ÷ the requests answered. The read path alone: bench/guard-reads-child.ts in a fresh process per run (with and without TANDEM_UNSAFE_NO_STATEMENT_GUARD=1, alternating first), ${libraryReads.toLocaleString('en')} point reads through LocalReads on the second replica's database file after a quarter as many to warm up.`
}
