import { TandemNode, type NodeOptions } from '../node/tandem-node.ts'
import { StatementLimits } from '../storage/index.ts'

/** Runs one node until SIGINT/SIGTERM; prints the ready line on stdout. */
export async function serve(options: NodeOptions): Promise<void> {
  const node = await TandemNode.start(options)
  process.stdout.write(`${node.readyLine()}\n`)
  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    await node.stop()
    process.exit(0)
  }
  process.on('SIGINT', () => void stop())
  process.on('SIGTERM', () => void stop())
  // A statement that runs on (a read without a time limit, a long write) cannot hold a stop.
  StatementLimits.forThisThread()?.stopOnSignals()
}
