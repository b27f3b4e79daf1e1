/**
 * CRC-32 (IEEE 802.3, as zlib). zlib's own (Node ≥ 20.15) is native and several times faster
 * than the table below, which serves older runtimes; both give the same value.
 */
import * as zlib from 'node:zlib'

const table = new Uint32Array(256)
for (let n = 0; n < 256; n++) {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  table[n] = c >>> 0
}

export function crc32Table(bytes: Uint8Array, seed = 0): number {
  let crc = ~seed >>> 0
  for (let i = 0; i < bytes.length; i++) crc = table[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8)
  return ~crc >>> 0
}

const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32

export const crc32: (bytes: Uint8Array, seed?: number) => number = native === undefined ? crc32Table : (bytes, seed = 0) => native(bytes, seed)
