import { tandemVersion } from '../shared/version.ts'
import { Command, Option } from 'commander'
import { defaultConfig, defaultHttpWorkers, httpWorkersMax } from '../node/config.ts'
import { advertiseUrl, baseUrl, bytes, coordinatorPrefix, coordinatorTarget, coordinatorTtlMs, durationMs, integer, moduleUrl, nodeUrl, synchronous } from './options.ts'
import { runAgainstNode, withAccessOptions, type AccessFlags } from './node-access.ts'
import { hashPasswordCommand } from './hash-password.ts'
import { serve } from './serve.ts'
import { runDemo } from './demo.ts'
import { printStatus } from './status.ts'
import { runShell } from './shell.ts'
import { promote } from './promote.ts'
import { load } from './load.ts'
import { jobsCommand } from './jobs.ts'

function nodeOptions(command: Command, defaultPort: number): Command {
  return command
    .requiredOption('--data <dir>', 'data directory (created if missing)')
    .option('--host <host>', 'address to listen on', defaultConfig.host)
    .option('--port <port>', 'HTTP port; 0 picks a free one', integer('--port'), defaultPort)
    .option('--advertise-url <url>', 'where other nodes and clients reach this node (default: the address it listens on); without a port, the listening port is added', advertiseUrl)
    .addOption(new Option('--synchronous <level>', 'SQLite synchronous level: full, normal or off').argParser(synchronous).default('full'))
    .option('--log-retain-bytes <size>', 'newest log bytes always kept', bytes, defaultConfig.logRetainBytes)
    .option('--log-retain-max-bytes <size>', 'most log kept for lagging replicas', bytes, defaultConfig.logRetainBytesMax)
    .option('--body-limit-bytes <size>', 'largest request body accepted', bytes, defaultConfig.bodyLimitBytes)
    .option('--load-limit-bytes <size>', 'largest database file or SQL text POST /db/load accepts', bytes, defaultConfig.loadLimitBytes)
    .option('--headers-timeout-ms <ms>', "a connection's request headers, or a replication WebSocket's hello, must arrive within this long", integer('--headers-timeout-ms', 100), defaultConfig.headersTimeoutMs)
    .option('--request-timeout-ms <ms>', 'a request must be received whole (headers and body) within this long; waits after it are not bounded by it', integer('--request-timeout-ms', 100), defaultConfig.requestTimeoutMs)
    .option('--max-connections <n>', 'connections held at once (WebSockets included); more are closed at once', integer('--max-connections', 1), defaultConfig.connectionsMax)
    .option(
      '--http-workers <n>',
      'processes that answer HTTP, the node\'s own included: the others answer reads on their own read-only connections and hand the rest to it (1: the node\'s process alone)',
      integer('--http-workers', 1, httpWorkersMax),
      defaultHttpWorkers(),
    )
    .option('--read-threads <n>', 'threads that run reads, each with its own read-only connection; 0 reads on the main thread', integer('--read-threads'), defaultConfig.readThreads)
    .option(
      '--inline-read-max-us <us>',
      'a read whose SQL ran in at most this many µs last time runs on the main thread, skipping the hop to a read thread (0: never)',
      integer('--inline-read-max-us'),
      defaultConfig.inlineReadMaxUs,
    )
    .option('--query-timeout <duration>', 'the longest one client statement (read or write) may run before it is stopped; a request\'s db_timeout may lower it (0: no limit)', durationMs, defaultConfig.queryTimeoutMs)
    .option('--check-interval <duration>', 'anti-entropy: the master checks one range of 1,000 rows this often, and every replica the same rows at the same LSN (0: never)', durationMs, defaultConfig.checkIntervalMs)
    .option('--write-budget <duration>', "the master's event loop gives one write request this long; a request that needs longer runs alone on a thread of its own (0: never)", durationMs, defaultConfig.writeBudgetMs)
    .option('--max-result-bytes <size>', "the most one statement's result may hold (16 bytes per value plus its own); past it the statement fails with result too large (0: no limit)", bytes, defaultConfig.resultBytesMax)
    .option('--coordinator <urls>', 'automatic failover: etcd client URLs, comma-separated, or etcd://HOST:2379[,HOST:2379…][/PREFIX]; the master holds a lease there, and the most up-to-date replica takes over when it ends', coordinatorTarget)
    .option('--coordinator-prefix <prefix>', "where in etcd this cluster keeps its keys (one prefix per cluster)", coordinatorPrefix, defaultConfig.coordinatorPrefix)
    .option('--coordinator-ttl <duration>', "the master's lease in etcd: a replica takes over this long after the master stops renewing it", coordinatorTtlMs, defaultConfig.coordinatorTtlMs)
    .option('--auth <file>', "users and permissions, in rqlite's format: [{\"username\", \"password\", \"perms\": [...]}] (needs --cluster-secret-file)")
    .option('--cluster-secret-file <file>', 'the secret every node of the cluster is given; nodes prove it to each other')
    .option('--tls-cert <file>', 'serve HTTPS and WSS with this certificate (PEM)')
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
    .option('--tls-ca <file>', "the CA that signs the other nodes' certificates (PEM)")
    .option('--tls-client-auth', 'mutual TLS: every connection must present a certificate signed by --tls-ca')
    .option('--cors-origin <origin...>', 'let browser pages of these origins call this node (others are refused)')
    .option('--insecure', 'listen beyond loopback without --auth and a cluster secret (anyone who reaches the port owns the cluster)')
}

interface ServeFlags {
  data: string
  import?: string
  host: string
  port: number
  synchronous: 'full' | 'normal' | 'off'
  logRetainBytes: number
  logRetainMaxBytes: number
  bodyLimitBytes: number
  loadLimitBytes: number
  headersTimeoutMs: number
  requestTimeoutMs: number
  maxConnections: number
  httpWorkers: number
  readThreads: number
  inlineReadMaxUs: number
  queryTimeout: number
  advertiseUrl?: string
  writeBudget: number
  checkInterval: number
  maxResultBytes: number
  coordinator?: { urls: string[]; prefix?: string }
  coordinatorPrefix: string
  coordinatorTtl: number
  auth?: string
  clusterSecretFile?: string
  tlsCert?: string
  tlsKey?: string
  tlsCa?: string
  tlsClientAuth?: boolean
  corsOrigin?: string[]
  insecure?: boolean
  master?: string
  syncReplicas?: number
  syncTimeoutMs?: number
  minReplicas?: number
  maxLag?: number
  applyDelayMs?: number
  flushDelayMs?: number
  streamLingerMs?: number
  jobs?: string
  concurrency?: number
  prefetch?: number
  jobThreads?: number
  killGraceMs?: number
  leaseMs?: number
  jobRetainMs?: number
  jobRetainCount?: number
  maxQueuedTasks?: number
}

function toNodeOptions(role: 'master' | 'replica', flags: ServeFlags) {
  return {
    role,
    dataDir: flags.data,
    host: flags.host,
    port: flags.port,
    synchronous: flags.synchronous,
    logRetainBytes: flags.logRetainBytes,
    logRetainBytesMax: flags.logRetainMaxBytes,
    bodyLimitBytes: flags.bodyLimitBytes,
    loadLimitBytes: flags.loadLimitBytes,
    headersTimeoutMs: flags.headersTimeoutMs,
    requestTimeoutMs: flags.requestTimeoutMs,
    connectionsMax: flags.maxConnections,
    httpWorkers: flags.httpWorkers,
    readThreads: flags.readThreads,
    inlineReadMaxUs: flags.inlineReadMaxUs,
    queryTimeoutMs: flags.queryTimeout,
    writeBudgetMs: flags.writeBudget,
    checkIntervalMs: flags.checkInterval,
    resultBytesMax: flags.maxResultBytes,
    ...(flags.coordinator === undefined ? {} : { coordinatorUrls: flags.coordinator.urls }),
    // A prefix in an etcd:// URL wins over --coordinator-prefix.
    coordinatorPrefix: flags.coordinator?.prefix ?? flags.coordinatorPrefix,
    coordinatorTtlMs: flags.coordinatorTtl,
    ...(flags.auth === undefined ? {} : { authFile: flags.auth }),
    ...(flags.clusterSecretFile === undefined ? {} : { clusterSecretFile: flags.clusterSecretFile }),
    ...(flags.tlsCert === undefined ? {} : { tlsCertFile: flags.tlsCert }),
    ...(flags.tlsKey === undefined ? {} : { tlsKeyFile: flags.tlsKey }),
    ...(flags.tlsCa === undefined ? {} : { tlsCaFile: flags.tlsCa }),
    tlsClientAuth: flags.tlsClientAuth === true,
    corsOrigins: flags.corsOrigin ?? [],
    insecure: flags.insecure === true,
    ...(flags.master === undefined ? {} : { masterUrl: flags.master }),
    ...(flags.import === undefined ? {} : { importFile: flags.import }),
    ...(flags.advertiseUrl === undefined ? {} : { advertiseUrl: flags.advertiseUrl }),
    ...(flags.syncReplicas === undefined ? {} : { syncReplicas: flags.syncReplicas }),
    ...(flags.syncTimeoutMs === undefined ? {} : { syncTimeoutMs: flags.syncTimeoutMs }),
    ...(flags.minReplicas === undefined ? {} : { minReplicas: flags.minReplicas }),
    ...(flags.maxLag === undefined ? {} : { maxLagMs: flags.maxLag }),
    ...(flags.applyDelayMs === undefined ? {} : { applyDelayMs: flags.applyDelayMs }),
    ...(flags.flushDelayMs === undefined ? {} : { flushDelayMs: flags.flushDelayMs }),
    ...(flags.streamLingerMs === undefined ? {} : { streamLingerMs: flags.streamLingerMs }),
    ...(flags.jobs === undefined ? {} : { jobsModuleUrl: flags.jobs }),
    ...(flags.concurrency === undefined ? {} : { concurrency: flags.concurrency }),
    ...(flags.prefetch === undefined ? {} : { prefetch: flags.prefetch }),
    ...(flags.jobThreads === undefined ? {} : { jobThreads: flags.jobThreads }),
    ...(flags.killGraceMs === undefined ? {} : { killGraceMs: flags.killGraceMs }),
    ...(flags.leaseMs === undefined ? {} : { leaseMs: flags.leaseMs }),
    ...(flags.jobRetainMs === undefined ? {} : { jobRetainMs: flags.jobRetainMs }),
    ...(flags.jobRetainCount === undefined ? {} : { jobRetainCount: flags.jobRetainCount }),
    ...(flags.maxQueuedTasks === undefined ? {} : { queuedTasksMax: flags.maxQueuedTasks }),
  }
}

export function buildProgram(): Command {
  const program = new Command('tandem').version(tandemVersion, '-V, --version', 'print Tandem\'s version')
    .description('A replicated SQLite cluster: one master takes writes, replicas stream its log and serve reads.')
    .showHelpAfterError()
    // Commander quotes a refused argument whole: a URL's password never reaches the terminal or a log.
    .configureOutput({ outputError: (text, write) => write(text.replace(/\/\/[^/@\s']*@/g, '//***@')) })

  nodeOptions(program.command('master').description('run the master: it takes every write and streams its log to replicas'), 4001)
    .option('--sync-replicas <k>', 'replicas that must confirm each write before it is acknowledged (per request: sync=K)', integer('--sync-replicas'), defaultConfig.syncReplicas)
    .option('--sync-timeout-ms <ms>', 'how long a synchronous write waits for its confirmations (per request: sync_timeout)', integer('--sync-timeout-ms', 1), defaultConfig.syncTimeoutMs)
    .option('--min-replicas <n>', 'refuse writes while fewer than N replicas are within --max-lag', integer('--min-replicas'), defaultConfig.minReplicas)
    .option('--max-lag <ms>', 'how far behind (ms) a replica may be and still count for --min-replicas', integer('--max-lag', 1), defaultConfig.maxLagMs)
    .option(
      '--stream-linger-ms <ms>',
      'a commit less than this long after the previous one waits until this long after the last frame to the replicas, so one frame carries them all (0: send every commit at once)',
      integer('--stream-linger-ms'),
      defaultConfig.streamLingerMs,
    )
    .option('--lease-ms <ms>', 'a task lease expires when its replica has not acknowledged for this long; the task runs again elsewhere', integer('--lease-ms', 100), defaultConfig.leaseMs)
    .option('--job-retain-ms <ms>', 'finished jobs are deleted this long after they finish', integer('--job-retain-ms', 1), defaultConfig.jobRetainMs)
    .option('--job-retain-count <n>', 'and beyond the newest N finished jobs', integer('--job-retain-count'), defaultConfig.jobRetainCount)
    .option('--max-queued-tasks <n>', 'unfinished tasks held at once (in memory, inputs included); a job past it is refused', integer('--max-queued-tasks', 1), defaultConfig.queuedTasksMax)
    .option('--import <file>', 'a new master loads this SQLite database file (or .sql dump) when it starts, and every replica copies it; a master that already holds data ignores it')
    .action((flags: ServeFlags) => serve(toNodeOptions('master', flags)))

  nodeOptions(program.command('replica').description('run a replica: it follows the master and serves reads'), 4002)
    .requiredOption('--master <url>', 'the master HTTP URL, e.g. http://127.0.0.1:4001', baseUrl)
    .option('--apply-delay-ms <ms>', 'apply each entry no earlier than this long after it arrives (a delayed replica)', integer('--apply-delay-ms'), defaultConfig.applyDelayMs)
    .option(
      '--flush-delay-ms <ms>',
      'with --synchronous full: how long applied entries may wait for their sync when no write waits for this replica (0: sync every batch)',
      integer('--flush-delay-ms'),
      defaultConfig.flushDelayMs,
    )
    .option('--jobs <module>', 'run jobs: a JavaScript module exporting an async function per handler', moduleUrl)
    .option('--concurrency <n>', 'tasks run at once', integer('--concurrency', 1, 1024), defaultConfig.concurrency)
    .option(
      '--prefetch <n>',
      'at most this many tasks leased to this replica beyond --concurrency, queued here so that a slot that frees starts the next at once; the master holds it to what the slots start within 100 ms, by the tasks\' run time (default 64; 0: none)',
      integer('--prefetch', 0, 1024),
    )
    .option('--job-threads <n>', 'worker threads the tasks share (default: one per core, at most --concurrency); a CPU-bound handler holds up the tasks on its thread', integer('--job-threads', 1))
    .option('--kill-grace-ms <ms>', 'a handler still running this long after its abort (timeout, cancel) is killed', integer('--kill-grace-ms'), defaultConfig.killGraceMs)
    .action((flags: ServeFlags) => serve(toNodeOptions('replica', flags)))

  program
    .command('demo')
    .description('run a master and N replicas on this machine (Ctrl-C stops all)')
    .option('--replicas <n>', 'number of replicas', integer('--replicas'), 2)
    .option('--dir <dir>', 'where the nodes keep their data', './data')
    .option('--port <port>', 'the master port; replicas take the next ones', integer('--port'), 4001)
    .action((flags: { replicas: number; dir: string; port: number }) => runDemo(flags))

  withAccessOptions(
    program
      .command('promote')
      .description('make the replica at URL the master of a new epoch; the other replicas follow it')
      .argument('<url>', 'the replica to promote', nodeUrl)
      .option('--force', 'promote even if another reachable replica is more up to date'),
  ).action((url: string, flags: AccessFlags & { force?: boolean }) => runAgainstNode(url, flags, (access) => promote(access, flags.force === true)))

  withAccessOptions(
    program
      .command('load')
      .description('load a SQLite database file (it replaces the database) or SQL text as sqlite3 .dump writes it (it runs on it) into the cluster; every replica copies the result')
      .argument('<url>', 'the master (a replica names it, and the file goes there)', nodeUrl)
      .argument('<file>', 'a SQLite database file, or a .sql dump'),
  ).action((url: string, file: string, flags: AccessFlags) => runAgainstNode(url, flags, (access) => load(access, file)))

  withAccessOptions(
    program
      .command('status')
      .description('show the topology, positions and lag as a table')
      .argument('<url>', 'any node of the cluster', nodeUrl),
  ).action((url: string, flags: AccessFlags) => runAgainstNode(url, flags, printStatus))

  withAccessOptions(
    program
      .command('shell')
      .description('an interactive SQL shell (.tables, .schema, .help)')
      .argument('<url>', 'any node of the cluster', nodeUrl),
  ).action((url: string, flags: AccessFlags) => runAgainstNode(url, flags, runShell))

  program.addCommand(jobsCommand())

  program
    .command('hash-password')
    .description('read a password on stdin and print its scrypt hash, for the "password" of a user in an --auth file')
    .action(() => hashPasswordCommand())

  return program
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv)
}
