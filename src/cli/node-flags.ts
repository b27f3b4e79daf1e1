/**
 * The V8 flags a Tandem node should run with: `tandem demo`, the tests and the bench start `node`
 * with them; in production start a node as `node --max-semi-space-size=2
 * --heap-growing-percent=100 node_modules/tandem/bin/tandem.js master …` (README, Performance).
 * bin/tandem.js cannot carry them: `#!/usr/bin/env -S node …` fails where env has no -S (BusyBox,
 * so Alpine images), and NODE_OPTIONS refuses --heap-growing-percent.
 *
 * --max-semi-space-size=2: V8's young generation may otherwise grow to 2 × 16 MB per isolate
 * (the main thread and each read or job thread), and under load a node keeps it grown. At 2 MB
 * a replica serving 64 HTTP readers through a read thread peaked at ~145 MB RSS instead of
 * ~190 MB, a master taking 64 writers at ~95 MB instead of ~120 MB; the CPU per request did not
 * change beyond the noise of the 2-core machine it was measured on.
 *
 * --heap-growing-percent=100: after each full collection V8 lets the old generation grow to
 * twice what is live (by default a factor it picks between 1.1 and 4, and under a steady stream
 * of short-lived requests it picks high). The replica serving 64 HTTP readers peaked at 127 MB
 * instead of 140 MB; the master's CPU per write was unchanged (4 interleaved pairs). At 30 (1.3×)
 * the same replica peaked ~20 MB lower still, but each write cost ~15 % more CPU.
 */
export const nodeFlags: readonly string[] = ['--max-semi-space-size=2', '--heap-growing-percent=100']
