/**
 * A TCP proxy on loopback that a test can cut and restore: one node's link to a service (its
 * etcd, say) fails while everyone else's works, without network namespaces.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net'

export class TcpProxy {
  readonly url: string
  private readonly server: Server
  private readonly sockets = new Set<Socket>()
  private isCut = false

  private constructor(url: string, server: Server) {
    this.url = url
    this.server = server
  }

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    const port = typeof address === 'object' && address !== null ? address.port : 0
    const proxy = new TcpProxy(`http://127.0.0.1:${port}`, server)
    server.on('connection', (client) => proxy.relay(client, target))
    return proxy
  }

  private relay(client: Socket, target: { host: string; port: number }): void {
    if (this.isCut) return void client.destroy()
    const upstream = createConnection(target)
    for (const socket of [client, upstream]) {
      this.sockets.add(socket)
      socket.on('close', () => this.sockets.delete(socket))
      socket.on('error', () => undefined)
    }
    client.pipe(upstream).pipe(client)
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  }

  /** Every connection through the proxy is dropped, and new ones are refused, until restore(). */
  cut(): void {
    this.isCut = true
    for (const socket of this.sockets) socket.destroy()
  }

  restore(): void {
    this.isCut = false
  }

  async stop(): Promise<void> {
    this.cut()
    await new Promise((resolve) => this.server.close(resolve))
  }
}
