/**
 * Waiting tasks: one heap per handler and group for those that may run now (higher priority
 * first, then FIFO; a group's head blocked by its limit holds up only its group), and one heap by time for those that must wait (a delay, a retry's backoff). Tasks that
 * stop waiting while in a heap (cancelled) are dropped when they reach the top.
 */
import { Heap } from './heap.ts'
import { runsBefore, type Task } from './queue-model.ts'

/** A ready heap per handler and group (the empty group: jobs without one). */
const heapKey = (task: Task) => `${task.job.name}\u0000${task.job.options.group ?? ''}`

export class TaskQueue {
  private readonly ready = new Map<string, Heap<Task>>()
  private readonly delayed = new Heap<Task>((a, b) => a.runAfter < b.runAfter)
  private readonly now: () => number
  /** Called when a delayed task becomes due. */
  private readonly onDue: () => void
  private timer: NodeJS.Timeout | undefined
  private timerAt = Infinity
  private seq = 0

  constructor(now: () => number, onDue: () => void) {
    this.now = now
    this.onDue = onDue
  }

  /** Queues a task in the waiting phase. */
  add(task: Task): void {
    task.seq = ++this.seq
    if (task.runAfter > this.now()) {
      this.delayed.push(task)
      this.armTimer()
      return
    }
    let heap = this.ready.get(heapKey(task))
    if (heap === undefined) {
      heap = new Heap(runsBefore)
      this.ready.set(heapKey(task), heap)
    }
    heap.push(task)
  }

  /** The first waiting task of each handler and group, once due tasks have moved to the ready heaps. */
  *heads(): Generator<Task> {
    this.promoteDue()
    for (const heap of this.ready.values()) {
      for (let task = heap.peek(); task !== undefined; task = heap.peek()) {
        if (task.phase === 'waiting') {
          yield task
          break
        }
        heap.pop()
      }
    }
  }

  /** Removes the head of its handler's heap (a task `heads` just yielded). */
  take(task: Task): void {
    const popped = this.ready.get(heapKey(task))?.pop()
    if (popped !== task) throw new Error('TaskQueue.take: the task is not the head of its heap')
  }

  get size(): number {
    let size = this.delayed.size
    for (const heap of this.ready.values()) size += heap.size
    return size
  }

  private promoteDue(): void {
    const now = this.now()
    for (let task = this.delayed.peek(); task !== undefined && task.runAfter <= now; task = this.delayed.peek()) {
      this.delayed.pop()
      if (task.phase === 'waiting') this.add(task)
    }
    this.armTimer()
  }

  private armTimer(): void {
    const next = this.delayed.peek()
    if (next === undefined || next.runAfter >= this.timerAt) return
    clearTimeout(this.timer)
    this.timerAt = next.runAfter
    this.timer = setTimeout(() => {
      this.timerAt = Infinity
      this.timer = undefined
      this.onDue()
    }, Math.max(1, next.runAfter - this.now()))
    this.timer.unref()
  }

  close(): void {
    clearTimeout(this.timer)
  }
}
