/**
 * How the commands that talk to a node (status, shell, promote, jobs) reach it: as a user of the
 * nodes' --auth file (HTTP Basic on every request) and, for https:// nodes, with a CA and a client
 * certificate for mutual TLS. Each comes from a flag, else from the node URL (`user:password@`),
 * else from the environment:
 *
 * | what        | flag                   | environment                       |
 * |-------------|------------------------|-----------------------------------|
 * | user        | --user NAME[:PASSWORD] | TANDEM_USER (NAME[:PASSWORD])     |
 * | password    | (in --user)            | TANDEM_PASSWORD                   |
 * | CA (PEM)    | --ca FILE              | TANDEM_CA                         |
 * | client cert | --cert FILE --key FILE | TANDEM_CERT, TANDEM_KEY           |
 *
 * A password never shows in what the commands print: URLs are printed without their userinfo.
 */
import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { Agent, fetch, type RequestInit, type Response } from 'undici'

export interface AccessFlags {
  user?: string
  ca?: string
  cert?: string
  key?: string
}

/** A refusal or failure to print as `error (CODE): message`, exiting 1 without a stack trace. */
export class CommandError extends Error {
  readonly code: string

  constructor(code: string, message: string) {
    super(message)
    this.name = 'CommandError'
    this.code = code
  }
}

/** Adds --user, --ca, --cert and --key to a command that talks to a node. */
export function withAccessOptions(command: Command): Command {
  return command
    .option('--user <name[:password]>', 'a user of the nodes\' --auth file (env TANDEM_USER); without :password, TANDEM_PASSWORD is read')
    .option('--ca <file>', 'the CA that signs the nodes\' certificates, for https:// URLs (PEM; env TANDEM_CA)')
    .option('--cert <file>', 'a client certificate for mutual TLS (PEM; env TANDEM_CERT; needs --key)')
    .option('--key <file>', 'the private key of --cert (PEM; env TANDEM_KEY)')
}

/** Runs a command's action: a CommandError is printed on stderr and the exit code set to 1. */
export function runCommand(action: () => Promise<void>): Promise<void> {
  return action().catch((error: unknown) => {
    if (!(error instanceof CommandError)) throw error
    process.stderr.write(`error (${error.code}): ${error.message}\n`)
    process.exitCode = 1
  })
}

/**
 * Runs a command against the node at `url` (userinfo allowed) with the user's credentials and
 * TLS files; a CommandError (a refusal, a bad flag) is printed and exits 1.
 */
export function runAgainstNode(url: string, flags: AccessFlags, action: (access: NodeAccess) => Promise<void>): Promise<void> {
  return runCommand(async () => {
    const access = NodeAccess.of(url, flags)
    try {
      await action(access)
    } finally {
      await access.close()
    }
  })
}

export class NodeAccess {
  /** The node's URL as given, without credentials. */
  readonly url: string
  private readonly authorization: string | undefined
  private readonly dispatcher: Agent

  private constructor(url: string, authorization: string | undefined, tls: { ca?: Buffer; cert?: Buffer; key?: Buffer }) {
    this.url = url
    this.authorization = authorization
    this.dispatcher = new Agent({ connect: tls, keepAliveTimeout: 4_000 })
  }

  /** From a command's URL argument (userinfo allowed), its flags and the environment. */
  static of(url: string, flags: AccessFlags, env: NodeJS.ProcessEnv = process.env): NodeAccess {
    const parsed = new URL(url)
    const fromUrl = parsed.username === '' ? undefined : parsed.password === '' ? decoded(parsed.username) : `${decoded(parsed.username)}:${decoded(parsed.password)}`
    const bare = parsed.origin
    const user = flags.user ?? fromUrl ?? nonEmpty(env['TANDEM_USER'])
    const authorization = user === undefined ? undefined : basicAuthorization(user, env)
    const cert = flags.cert ?? nonEmpty(env['TANDEM_CERT'])
    const key = flags.key ?? nonEmpty(env['TANDEM_KEY'])
    if ((cert === undefined) !== (key === undefined)) throw new CommandError('BAD_REQUEST', 'a client certificate needs its key: give --cert and --key (or TANDEM_CERT and TANDEM_KEY) together')
    const ca = flags.ca ?? nonEmpty(env['TANDEM_CA'])
    const tls = {
      ...(ca === undefined ? {} : { ca: readPem(ca, flags.ca === undefined ? 'TANDEM_CA' : '--ca') }),
      ...(cert === undefined ? {} : { cert: readPem(cert, flags.cert === undefined ? 'TANDEM_CERT' : '--cert') }),
      ...(key === undefined ? {} : { key: readPem(key, flags.key === undefined ? 'TANDEM_KEY' : '--key') }),
    }
    return new NodeAccess(bare, authorization, tls)
  }

  /** fetch() to any node of the cluster, with the credentials and TLS; unreachable is UNAVAILABLE. */
  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = { ...(init.headers as Record<string, string> | undefined), ...(this.authorization === undefined ? {} : { authorization: this.authorization }) }
    try {
      return await fetch(url, { ...init, headers, dispatcher: this.dispatcher })
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause
      throw new CommandError('UNAVAILABLE', `${new URL(url).origin} could not be reached: ${cause instanceof Error ? cause.message : String(error)}`)
    }
  }

  /** A JSON request; an error answer is a CommandError with the node's code and message. */
  async json(method: 'GET' | 'POST' | 'DELETE', url: string, options: { body?: unknown; timeoutMs: number }): Promise<unknown> {
    const response = await this.fetch(url, {
      method,
      headers: { accept: 'application/json', ...(options.body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      signal: AbortSignal.timeout(options.timeoutMs),
    })
    const { body, text } = await readJson(response)
    if (!response.ok) throw refusalOf(response.status, body, text)
    return body
  }

  async close(): Promise<void> {
    await this.dispatcher.close()
  }
}

/** The node's error answer (`{ error, code }`) as a CommandError. */
export function refusalOf(status: number, body: unknown, text = ''): CommandError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as { code?: unknown; error?: unknown }
  const code = typeof b.code === 'string' ? b.code : `HTTP ${status}`
  const message = typeof b.error === 'string' ? b.error : text.trim() || `HTTP ${status}`
  return new CommandError(code, message)
}

/** `name:password`, or `name` with the password in TANDEM_PASSWORD. */
function basicAuthorization(user: string, env: NodeJS.ProcessEnv): string {
  const colon = user.indexOf(':')
  const name = colon < 0 ? user : user.slice(0, colon)
  const password = colon < 0 ? nonEmpty(env['TANDEM_PASSWORD']) : user.slice(colon + 1)
  if (name === '') throw new CommandError('BAD_REQUEST', 'the user name is empty: write --user NAME[:PASSWORD]')
  if (password === undefined || password === '') {
    throw new CommandError('BAD_REQUEST', `user ${name} has no password: write --user ${name}:PASSWORD, or set TANDEM_PASSWORD`)
  }
  return `Basic ${Buffer.from(`${name}:${password}`, 'utf8').toString('base64')}`
}

function readPem(file: string, source: string): Buffer {
  let content: Buffer
  try {
    content = readFileSync(file)
  } catch (error) {
    throw new CommandError('BAD_REQUEST', `cannot read ${source} ${file}: ${(error as Error).message}`)
  }
  if (!content.includes('-----BEGIN ')) throw new CommandError('BAD_REQUEST', `${source} ${file} is not a PEM file (no -----BEGIN line)`)
  return content
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value
}

function decoded(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/** A response's body as JSON (undefined when it is not JSON), and as the text it came as. */
export async function readJson(response: Response): Promise<{ body: unknown; text: string }> {
  const text = await response.text()
  try {
    return { body: JSON.parse(text) as unknown, text }
  } catch {
    return { body: undefined, text }
  }
}
