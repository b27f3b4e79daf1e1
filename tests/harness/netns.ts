/**
 * Machines for tests, as network namespaces on one host: each gets its own network stack and
 * address on a bridge in the host's namespace (where the test and etcd run), and its link can be
 * cut and healed (`ip link set … down`), a partition as the other machines see it. Needs root
 * (CI runs as root); every name is random so that parallel runs do not collide.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'

export class NetworkLab {
  /** The bridge's address in the host namespace: where etcd and the test are reached. */
  readonly hostAddress: string
  readonly namespaces: string[]
  private readonly tag: string
  private readonly subnet: string

  private constructor(tag: string, subnet: string, count: number) {
    this.tag = tag
    this.subnet = subnet
    this.hostAddress = `${subnet}.1`
    this.namespaces = Array.from({ length: count }, (_, i) => `${tag}-${i + 1}`)
  }

  /** `count` namespaces on a fresh bridge and a /24 of 10.x. */
  static create(count: number): NetworkLab {
    if (process.getuid?.() !== 0) throw new Error('network namespaces need root (CI runs as root): run npm run test:etcd as root')
    const random = randomBytes(2)
    const lab = new NetworkLab(`t${random.toString('hex')}`, `10.${200 + (random[0]! % 50)}.${random[1]!}`, count)
    try {
      ip('link', 'add', lab.bridge, 'type', 'bridge')
      ip('addr', 'add', `${lab.hostAddress}/24`, 'dev', lab.bridge)
      ip('link', 'set', lab.bridge, 'up')
      lab.namespaces.forEach((ns, i) => {
        const [outside, inside] = [lab.hostSide(i), `${lab.tag}n${i + 1}`]
        ip('netns', 'add', ns)
        ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside)
        ip('link', 'set', outside, 'master', lab.bridge)
        ip('link', 'set', outside, 'up')
        ip('link', 'set', inside, 'netns', ns)
        ip('-n', ns, 'addr', 'add', `${lab.address(i)}/24`, 'dev', inside)
        ip('-n', ns, 'link', 'set', inside, 'up')
        ip('-n', ns, 'link', 'set', 'lo', 'up')
      })
    } catch (error) {
      lab.destroy()
      throw error
    }
    return lab
  }

  /** The address of the machine `i` (0-based). */
  address(i: number): string {
    return `${this.subnet}.${11 + i}`
  }

  /** Machine `i` loses its link: nothing reaches it, and it reaches nothing. */
  cut(i: number): void {
    ip('link', 'set', this.hostSide(i), 'down')
  }

  heal(i: number): void {
    ip('link', 'set', this.hostSide(i), 'up')
  }

  destroy(): void {
    for (const ns of this.namespaces) quietly(() => ip('netns', 'del', ns))
    quietly(() => ip('link', 'del', this.bridge))
  }

  private get bridge(): string {
    return `${this.tag}br`
  }

  private hostSide(i: number): string {
    return `${this.tag}h${i + 1}`
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] })
}

function quietly(run: () => void): void {
  try {
    run()
  } catch {
    // already gone
  }
}
