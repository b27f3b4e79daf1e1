/** Small HTTP helpers for cluster tests: every call has a timeout and returns status and body. */
export interface HttpResult<T = Record<string, unknown>> {
  status: number
  headers: Headers
  body: T
}

export async function post<T = Record<string, unknown>>(url: string, body: unknown, contentType = 'application/json'): Promise<HttpResult<T>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    redirect: 'manual',
    signal: AbortSignal.timeout(30_000),
  })
  return { status: response.status, headers: response.headers, body: await parseBody<T>(response) }
}

export async function get<T = Record<string, unknown>>(url: string): Promise<HttpResult<T>> {
  const response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(30_000) })
  return { status: response.status, headers: response.headers, body: await parseBody<T>(response) }
}

async function parseBody<T>(response: Response): Promise<T> {
  const text = await response.text()
  try {
    return JSON.parse(text) as T
  } catch {
    return text as T
  }
}

export interface ExecuteBody {
  results: { last_insert_id?: number; rows_affected?: number; error?: string; columns?: string[]; values?: unknown[][] }[]
  lsn: number
  error?: string
  code?: string
}

export interface QueryBody {
  results: { columns?: string[]; types?: string[]; values?: unknown[][]; error?: string; rows?: Record<string, unknown>[] }[]
  error?: string
  code?: string
}

export function execute(nodeUrl: string, statements: unknown[], query = ''): Promise<HttpResult<ExecuteBody>> {
  return post<ExecuteBody>(`${nodeUrl}/db/execute${query === '' ? '' : `?${query}`}`, statements)
}

export function query(nodeUrl: string, sql: string, query = 'level=none'): Promise<HttpResult<QueryBody>> {
  return get<QueryBody>(`${nodeUrl}/db/query?q=${encodeURIComponent(sql)}${query === '' ? '' : `&${query}`}`)
}

/** The rows of a one-statement query, or a thrown error with the body. */
export async function rows(nodeUrl: string, sql: string, queryString = 'level=none'): Promise<unknown[][]> {
  const result = await query(nodeUrl, sql, queryString)
  const first = result.body.results?.[0]
  if (result.status !== 200 || first === undefined || first.error !== undefined) {
    throw new Error(`query failed: HTTP ${result.status} ${JSON.stringify(result.body)}`)
  }
  return first.values ?? []
}

export async function checksum(nodeUrl: string): Promise<{ lsn: number; checksum: string; tables: Record<string, string> }> {
  const result = await get<{ lsn: number; checksum: string; tables: Record<string, string> }>(`${nodeUrl}/db/checksum`)
  if (result.status !== 200) throw new Error(`checksum failed: HTTP ${result.status} ${JSON.stringify(result.body)}`)
  return result.body
}

/** An answer read whole: `json` is the body parsed (integers past 2^53 rounded: read `text` for those), undefined when it is not JSON. */
export interface Reply {
  status: number
  headers: Headers
  text: string
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are read as untyped JSON on purpose
  json: any
}

/** Any request, with a bounded wait unless `signal` says otherwise; a string or bytes body is sent as given, anything else as JSON. */
export async function call(method: string, url: string, body?: unknown, options: { contentType?: string; signal?: AbortSignal; headers?: Record<string, string> } = {}): Promise<Reply> {
  const init: RequestInit = { method, redirect: 'manual', signal: options.signal ?? AbortSignal.timeout(60_000) }
  const headers: Record<string, string> = { ...options.headers }
  if (body !== undefined) {
    init.body = typeof body === 'string' || body instanceof Uint8Array ? (body as BodyInit) : JSON.stringify(body)
    headers['content-type'] = options.contentType ?? 'application/json'
  }
  init.headers = headers
  const response = await fetch(url, init)
  const text = await response.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: response.status, headers: response.headers, text, json }
}
