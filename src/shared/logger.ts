import { pino, type Logger } from 'pino'

export type { Logger }

/** One JSON line per event on stderr; stdout is kept for the node's "ready" line. */
export function createLogger(name: string, level: string = process.env['TANDEM_LOG_LEVEL'] ?? 'info'): Logger {
  return pino({ name, level, base: { node: name } }, pino.destination(2))
}

export const silentLogger: Logger = pino({ level: 'silent' })
