/** Tandem's release, from its package.json (two levels up from both src/shared and dist/shared). */
import { createRequire } from 'node:module'

export const tandemVersion: string = (createRequire(import.meta.url)('../../package.json') as { version: string }).version
