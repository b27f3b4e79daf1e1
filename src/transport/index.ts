export * from './frame-socket.ts'
