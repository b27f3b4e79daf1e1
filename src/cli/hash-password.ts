/**
 * `tandem hash-password`: reads a password on stdin (one line) and prints its scrypt hash, to put
 * in an --auth file instead of the password itself:
 *
 *   echo -n 'hunter2' | tandem hash-password      # or run it and type the password
 *
 * On a terminal the password is typed without echo; from a pipe the first line is taken. The
 * password is never an argument: arguments show in `ps` and in shell history.
 */
import { hashPassword } from '../security/index.ts'
import { CommandError, runCommand } from './node-access.ts'

export function hashPasswordCommand(): Promise<void> {
  return runCommand(async () => {
    const password = process.stdin.isTTY ? await promptHidden('password: ') : firstLine(await readAll())
    if (password === '') throw new CommandError('BAD_REQUEST', 'the password is empty: give it on stdin, e.g. printf %s "$PASSWORD" | tandem hash-password')
    process.stdout.write(`${await hashPassword(password)}\n`)
  })
}

function firstLine(text: string): string {
  const end = text.search(/\r?\n/)
  return end < 0 ? text : text.slice(0, end)
}

async function readAll(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/** Reads one line from the terminal in raw mode, echoing nothing; Ctrl-C exits. */
function promptHidden(prompt: string): Promise<string> {
  process.stderr.write(prompt)
  const stdin = process.stdin
  stdin.setRawMode(true)
  stdin.setEncoding('utf8')
  stdin.resume()
  return new Promise((resolve) => {
    let typed = ''
    const done = () => {
      stdin.off('data', onData)
      stdin.setRawMode(false)
      stdin.pause()
      process.stderr.write('\n')
    }
    const onData = (data: string) => {
      for (const char of data) {
        if (char === '\r' || char === '\n' || char === '\u0004') {
          done()
          return resolve(typed)
        }
        if (char === '\u0003') {
          done()
          process.exit(130)
        }
        if (char === '\u007f' || char === '\b') typed = typed.slice(0, -1)
        else typed += char
      }
    }
    stdin.on('data', onData)
  })
}
