/**
 * A bounded FIFO: the queue in front of one actor. It refuses instead of growing: a full
 * mailbox is back-pressure the sender sees ({@link MailboxFullError} for an ask), not memory
 * that grows until the process dies.
 */

export const DEFAULT_MAILBOX_CAPACITY = 1024;

export class Mailbox<T> {
  readonly capacity: number;
  private buf: (T | undefined)[];
  private head = 0;
  private size = 0;

  constructor(capacity: number = DEFAULT_MAILBOX_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`mailbox capacity must be an integer >= 1, got ${capacity}`);
    }
    this.capacity = capacity;
    this.buf = new Array<T | undefined>(Math.min(capacity, 16));
  }

  get length(): number {
    return this.size;
  }

  /** Appends `item`; returns false (and keeps nothing) when the mailbox is full. */
  offer(item: T): boolean {
    if (this.size >= this.capacity) return false;
    if (this.size === this.buf.length) this.grow();
    this.buf[(this.head + this.size) % this.buf.length] = item;
    this.size++;
    return true;
  }

  /** Removes and returns the oldest item. */
  poll(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.buf[this.head];
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) % this.buf.length;
    this.size--;
    return item;
  }

  /** Removes everything, oldest first. */
  drain(): T[] {
    const out: T[] = [];
    for (let item = this.poll(); item !== undefined; item = this.poll()) out.push(item);
    return out;
  }

  private grow(): void {
    const next = new Array<T | undefined>(Math.min(this.capacity, this.buf.length * 2));
    for (let i = 0; i < this.size; i++) next[i] = this.buf[(this.head + i) % this.buf.length];
    this.buf = next;
    this.head = 0;
  }
}
