export * from './log-entry.ts'
export * from './log-store.ts'
export * from './retention.ts'
export * from './crc32.ts'
