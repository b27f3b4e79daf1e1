import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isTandemError } from '../shared/errors.ts'
import { DataLock } from './data-lock.ts'

test('one lock per data directory: a second take is refused naming the holder; released, it can be taken again', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-lock-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const lock = DataLock.take(dir)
  assert.equal(readFileSync(join(dir, 'tandem.lock'), 'utf8').trim(), String(process.pid))
  assert.throws(() => DataLock.take(dir), (error) => isTandemError(error, 'DATA_DIR_IN_USE') && error.message.includes(`process ${process.pid}`))
  lock.release()
  assert.equal(existsSync(join(dir, 'tandem.lock')), false)
  DataLock.take(dir).release()
})

test('a lock left by a process that is gone, by one that is not Tandem, or unreadable, is taken over', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-lock-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout
  const notTandem = spawnSync('sh', ['-c', 'sleep 5 & echo $!'], { encoding: 'utf8' }).stdout.trim()
  for (const content of [gone, notTandem, 'garbage', '', '-1', String(process.pid)]) {
    writeFileSync(join(dir, 'tandem.lock'), content)
    const lock = DataLock.take(dir)
    assert.equal(readFileSync(join(dir, 'tandem.lock'), 'utf8').trim(), String(process.pid), JSON.stringify(content))
    lock.release()
  }
  spawnSync('kill', [notTandem])
})
