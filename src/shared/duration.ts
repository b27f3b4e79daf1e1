/** Go's duration syntax (`500ms`, `2s`, `1m30s`), which rqlite's parameters and Tandem's flags take. */

const units: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** `text` in milliseconds, or undefined when it is not a Go duration (a unit is required). */
export function goDurationMs(text: string): number | undefined {
  const parts = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/.test(text) ? text.match(/\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h)/g) : null
  if (parts === null) return undefined
  return parts.reduce((total, part) => {
    const [, amount, unit] = /^(\d+(?:\.\d+)?)(.+)$/.exec(part)!
    return total + Number(amount) * units[unit!]!
  }, 0)
}
