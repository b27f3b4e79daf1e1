/** Summaries of repeated measurements: the median and the spread (min–max) of the repetitions. */
export interface Spread {
  median: number
  min: number
  max: number
  /** Every repetition, in the order measured. */
  samples: number[]
}

export function spread(samples: readonly number[]): Spread {
  if (samples.length === 0) throw new Error('no samples to summarize')
  const sorted = [...samples].sort((a, b) => a - b)
  return { median: percentile(sorted, 50), min: sorted[0]!, max: sorted[sorted.length - 1]!, samples: [...samples] }
}

/** The p-th percentile of ascending `sorted` values, by linear interpolation between ranks. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new Error('percentile of no values')
  const rank = (p / 100) * (sorted.length - 1)
  const low = Math.floor(rank)
  const high = Math.ceil(rank)
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (rank - low)
}

/** Pairs measured in the same repetition, divided: how far each repetition's ratio moved. */
export function pairedRatios(subject: readonly number[], baseline: readonly number[]): Spread {
  const count = Math.min(subject.length, baseline.length)
  return spread(Array.from({ length: count }, (_, i) => subject[i]! / baseline[i]!))
}
