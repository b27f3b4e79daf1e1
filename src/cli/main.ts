import { Command, Option } from 'commander'
import { defaultConfig } from '../node/config.ts'
import { baseUrl, bytes, integer, synchronous } from './options.ts'
import { serve } from './serve.ts'
import { runDemo } from './demo.ts'
import { printStatus } from './status.ts'
import { runShell } from './shell.ts'

function nodeOptions(command: Command, defaultPort: number): Command {
  return command
    .requiredOption('--data <dir>', 'data directory (created if missing)')
    .option('--host <host>', 'address to listen on', defaultConfig.host)
    .option('--port <port>', 'HTTP port; 0 picks a free one', integer('--port'), defaultPort)
    .addOption(new Option('--synchronous <level>', 'SQLite synchronous level: full, normal or off').argParser(synchronous).default('full'))
    .option('--log-retain-bytes <size>', 'newest log bytes always kept', bytes, defaultConfig.logRetainBytes)
    .option('--log-retain-max-bytes <size>', 'most log kept for lagging replicas', bytes, defaultConfig.logRetainBytesMax)
    .option('--body-limit-bytes <size>', 'largest request body accepted', bytes, defaultConfig.bodyLimitBytes)
}

interface ServeFlags {
  data: string
  host: string
  port: number
  synchronous: 'full' | 'normal' | 'off'
  logRetainBytes: number
  logRetainMaxBytes: number
  bodyLimitBytes: number
  master?: string
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
    ...(flags.master === undefined ? {} : { masterUrl: flags.master }),
  }
}

export function buildProgram(): Command {
  const program = new Command('tandem')
    .description('A replicated SQLite cluster: one master takes writes, replicas stream its log and serve reads.')
    .showHelpAfterError()

  nodeOptions(program.command('master').description('run the master: it takes every write and streams its log to replicas'), 4001)
    .action((flags: ServeFlags) => serve(toNodeOptions('master', flags)))

  nodeOptions(program.command('replica').description('run a replica: it follows the master and serves reads'), 4002)
    .requiredOption('--master <url>', 'the master HTTP URL, e.g. http://127.0.0.1:4001', baseUrl)
    .action((flags: ServeFlags) => serve(toNodeOptions('replica', flags)))

  program
    .command('demo')
    .description('run a master and N replicas on this machine (Ctrl-C stops all)')
    .option('--replicas <n>', 'number of replicas', integer('--replicas'), 2)
    .option('--dir <dir>', 'where the nodes keep their data', './data')
    .option('--port <port>', 'the master port; replicas take the next ones', integer('--port'), 4001)
    .action((flags: { replicas: number; dir: string; port: number }) => runDemo(flags))

  program
    .command('status')
    .description('show the topology, positions and lag as a table')
    .argument('<url>', 'any node of the cluster', baseUrl)
    .action((url: string) => printStatus(url))

  program
    .command('shell')
    .description('an interactive SQL shell (.tables, .schema, .help)')
    .argument('<url>', 'any node of the cluster', baseUrl)
    .action((url: string) => runShell(url))

  return program
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv)
}
