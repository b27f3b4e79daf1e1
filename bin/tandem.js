#!/usr/bin/env node
import { main } from '../dist/cli/main.js'

// A command whose request neither answers nor fails (a peer that closes a TLS connection at the
// wrong moment has been seen to leave fetch() pending) would let the event loop empty and Node
// exit 0 with nothing printed. Settle it as the failure it is.
let settled = false
process.on('beforeExit', () => {
  if (settled) return
  console.error('error (UNAVAILABLE): the node closed the connection without answering')
  process.exit(1)
})

main(process.argv).then(
  () => {
    settled = true
  },
  (error) => {
    settled = true
    console.error(error instanceof Error ? error.message : error)
    process.exit(1)
  },
)
