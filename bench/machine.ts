/** What the figures were measured on: they mean little without it (fsync cost above all). */
import { cpus, platform, release, tmpdir, totalmem } from 'node:os'
import { statfsSync } from 'node:fs'

export interface Machine {
  cpu: string
  cores: number
  node: string
  os: string
  memoryGiB: number
  /** The file system holding os.tmpdir(), where every database of the run lives. */
  tmpFileSystem: string
}

const fileSystems: Record<number, string> = {
  0xef53: 'ext4',
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0x01021994: 'tmpfs',
  0x794c7630: 'overlayfs',
  0x2fc12fc1: 'zfs',
  0x6969: 'nfs',
}

export function describeMachine(): Machine {
  const all = cpus()
  let tmpFileSystem = 'unknown'
  try {
    const type = statfsSync(tmpdir()).type
    tmpFileSystem = fileSystems[type] ?? `0x${type.toString(16)}`
  } catch {
    // statfs is missing on some platforms; the figure is informative only.
  }
  return {
    cpu: all[0]?.model.trim() ?? 'unknown',
    cores: all.length,
    node: process.version,
    os: `${platform()} ${release()}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    tmpFileSystem: `${tmpdir()} on ${tmpFileSystem}`,
  }
}

export function machineLine(machine: Machine): string {
  return `${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.os}, data in ${machine.tmpFileSystem}`
}
