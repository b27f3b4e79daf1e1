/** The part of autocannon 8's programmatic API the benchmark uses (the package ships no types). */
declare module 'autocannon' {
  interface Options {
    url: string
    method?: 'GET' | 'POST'
    body?: string
    headers?: Record<string, string>
    /** A sequence every connection cycles through, in place of method/body. */
    requests?: { method?: 'GET' | 'POST'; path?: string; body?: string; headers?: Record<string, string>; setupRequest?: (request: Record<string, unknown>) => Record<string, unknown> }[]
    /** Concurrent keep-alive connections, each with one request in flight (pipelining 1). */
    connections?: number
    /** Seconds. */
    duration?: number
    /** Seconds before a request counts as a timeout. */
    timeout?: number
  }

  interface Histogram {
    average: number
    p50: number
    p99: number
    max: number
  }

  interface Result {
    /** Seconds, to 10 ms. */
    duration: number
    errors: number
    timeouts: number
    non2xx: number
    '2xx': number
    statusCodeStats: Record<string, { count: number }>
    /** Milliseconds. */
    latency: Histogram
    requests: Histogram & { total: number }
  }

  function autocannon(options: Options): Promise<Result>
  export default autocannon
}
