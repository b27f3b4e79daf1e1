// Example job handlers: the replicas of `tandem demo` run these (tandem replica --jobs ./examples/handlers.js).
// Every exported async function is a handler. See docs/jobs.md.

/** Counts the words of a text. */
export async function wordCount(text, ctx) {
  ctx.progress(0.5)
  return String(text).split(/\s+/).filter(Boolean).length
}

/** Reads this replica's copy of the `fruit` table (the README's example), as of the job's submission. */
export async function fruitReport(input, ctx) {
  const rows = ctx.db.all('SELECT name FROM fruit ORDER BY id')
  const prefix = String(input?.prefix ?? '')
  return rows.map((row) => row.name).filter((name) => name.startsWith(prefix))
}

/** Waits `ms` milliseconds (stops early when cancelled or timed out). */
export async function sleep(ms, ctx) {
  await new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, Number(ms))
    ctx.signal.addEventListener('abort', () => {
      clearTimeout(timer)
      reject(ctx.signal.reason)
    })
  })
  return { slept: Number(ms) }
}
