/**
 * The V8 flags every Tandem node process runs with. bin/tandem.js carries the same ones in its
 * first line (`env -S`), so `tandem master` gets them however it is started; `tandem demo` and
 * the test harness start `node` with them explicitly.
 *
 * --max-semi-space-size=2: V8's young generation may otherwise grow to 2 × 16 MB per isolate
 * (the main thread and each read or job thread), and under load a node keeps it grown. At 2 MB
 * a replica serving 64 HTTP readers through a read thread peaked at ~145 MB RSS instead of
 * ~190 MB, a master taking 64 writers at ~95 MB instead of ~120 MB; the CPU per request did not
 * change beyond the noise of the 2-core machine it was measured on.
 */
export const nodeFlags: readonly string[] = ['--max-semi-space-size=2']
