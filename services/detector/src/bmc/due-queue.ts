/**
 * A binary min-heap of items by `dueAt`: the poller's schedule. One timer for
 * the earliest item instead of one per BMC, and O(log n) to reschedule, so
 * ten thousand BMCs cost no more timers than one.
 */
export interface Due {
  dueAt: number;
}

export class DueQueue<T extends Due> {
  readonly #heap: T[] = [];

  get size(): number {
    return this.#heap.length;
  }

  peek(): T | undefined {
    return this.#heap[0];
  }

  push(item: T): void {
    const heap = this.#heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (at(heap, parent).dueAt <= item.dueAt) break;
      heap[i] = at(heap, parent);
      i = parent;
    }
    heap[i] = item;
  }

  pop(): T | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && at(heap, right).dueAt < at(heap, left).dueAt ? right : left;
      if (at(heap, child).dueAt >= last.dueAt) break;
      heap[i] = at(heap, child);
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

function at<T>(heap: readonly T[], i: number): T {
  return heap[i] as T;
}
