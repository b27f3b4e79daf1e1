import { TandemNode, type NodeOptions } from '../node/tandem-node.ts'

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
}
