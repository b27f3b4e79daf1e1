/**
 * A WebSocket carrying protocol frames: JSON control messages as text, entries as binary.
 * Adds what both ends need: sending with a bound on buffered bytes (backpressure), and a
 * liveness check that terminates a peer that stopped answering pings.
 */
import type { WebSocket } from 'ws'

export interface FrameSocketOptions {
  /** Above this many buffered bytes, sendBinary() waits until the socket drains. */
  bufferedBytesMax: number
  /** A peer silent for this long is terminated. */
  silenceMsMax: number
}

export class FrameSocket {
  private readonly socket: WebSocket
  private readonly options: FrameSocketOptions
  private heardAt = Date.now()
  private readonly liveness: NodeJS.Timeout

  constructor(socket: WebSocket, options: FrameSocketOptions) {
    this.socket = socket
    this.options = options
    const heard = () => {
      this.heardAt = Date.now()
    }
    socket.on('message', heard)
    socket.on('pong', heard)
    const checkEveryMs = Math.max(50, Math.floor(options.silenceMsMax / 3))
    this.liveness = setInterval(() => {
      if (Date.now() - this.heardAt > options.silenceMsMax) socket.terminate()
      else if (socket.readyState === socket.OPEN) socket.ping()
    }, checkEveryMs)
    this.liveness.unref()
    socket.once('close', () => clearInterval(this.liveness))
  }

  get isOpen(): boolean {
    return this.socket.readyState === this.socket.OPEN
  }

  sendJson(message: object): void {
    if (this.isOpen) this.socket.send(JSON.stringify(message))
  }

  /**
   * Sends a binary frame; resolves once the socket has room for more, or with `untilWritten`
   * once the frame itself was handed to the kernel (its buffer may then be reused).
   */
  async sendBinary(frame: Uint8Array, untilWritten = false): Promise<void> {
    if (!this.isOpen) return
    if (!untilWritten && this.socket.bufferedAmount < this.options.bufferedBytesMax) {
      this.socket.send(frame)
      return
    }
    await new Promise<void>((resolve) => this.socket.send(frame, () => resolve()))
  }

  close(code = 1000, reason = ''): void {
    clearInterval(this.liveness)
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING) this.socket.close(code, reason)
  }

  terminate(): void {
    clearInterval(this.liveness)
    this.socket.terminate()
  }
}
