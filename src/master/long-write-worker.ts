/**
 * The long-write thread: a write request that needs more than the event loop's budget runs here,
 * alone in a batch of one, on a connection of its own, while the pipeline waits (SQLite has one
 * writer). The same WriteBatch code as the event loop's runs it: the same policy, the same
 * capture, the same log entry appended in the same transaction. Its statements have their own
 * limits (db_timeout, --query-timeout) and stop on SIGTERM like every other.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { systemClock } from '../shared/clock.ts'
import { LogStore } from '../replication-log/log-store.ts'
import { SchemaGeneration, openWriter } from '../storage/index.ts'
import { WriteBatch, type BatchItem } from './write-batch.ts'
import { toWire, type FromLongWriter, type LongWriteOutcome, type LongWriteWorkerData, type ToLongWriter } from './long-write-protocol.ts'

const data = workerData as LongWriteWorkerData
const port = parentPort!
const writer = openWriter(data.dbPath, data.synchronous, data.queryTimeoutMs)
const log = new LogStore(writer.connection, (fn) => writer.policy.internally(fn))
const schema = new SchemaGeneration(data.schema)
if (data.schemaMirror !== undefined) schema.mirrorInto(data.schemaMirror)
const batch = new WriteBatch({ writer, log, schema, clock: systemClock, entryBytesMax: data.entryBytesMax })

function run(item: BatchItem, lsn: number, epoch: number, previousHash: Uint8Array | null): LongWriteOutcome {
  try {
    for (;;) {
      const outcome = batch.run([item], lsn, epoch, previousHash)
      // A statement stopped at its limit took the transaction: run again, answering it the error.
      if (outcome.kind === 'again') continue
      if (outcome.kind === 'oversized') return outcome
      if (outcome.kind === 'too-long') throw new Error('the long-write thread has no budget to run out of')
      const { results, replayedLsn, error } = item
      return { kind: 'committed', entry: outcome.entry, results, replayedLsn, error: error === undefined ? undefined : toWire(error) }
    }
  } catch (error) {
    return { kind: 'failed', error: toWire(error) }
  }
}

port.on('message', (message: ToLongWriter) => {
  if (message.type === 'stop') {
    writer.connection.close()
    port.close()
    return
  }
  const outcome = run({ request: message.request, stopped: message.stopped }, message.lsn, message.epoch, message.previousHash)
  port.postMessage({ type: 'done', outcome } satisfies FromLongWriter)
})

port.postMessage({ type: 'ready', watchedId: writer.watched?.id } satisfies FromLongWriter)
