#!/usr/bin/env -S node --max-semi-space-size=2 --heap-growing-percent=100
import { main } from '../dist/cli/main.js'

main(process.argv).catch((error) => {
  console.error(error instanceof Error ? error.message : error)
  process.exit(1)
})
