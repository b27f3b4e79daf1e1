/**
 * The URL a Worker starts from: `<name>.js` beside the calling module in the build. Run from
 * source under tsx (tests, development), a worker thread on Node 20 does not get the TypeScript
 * loader the main thread has, so a small module registers it in the thread first, then loads
 * `<name>.ts`.
 */
export function workerEntry(name: string, callerUrl: string): URL {
  if (!callerUrl.endsWith('.ts')) return new URL(`./${name}.js`, callerUrl)
  const entry = new URL(`./${name}.ts`, callerUrl).href
  const source = `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}; register(); await import(${JSON.stringify(entry)})`
  return new URL(`data:text/javascript,${encodeURIComponent(source)}`)
}
