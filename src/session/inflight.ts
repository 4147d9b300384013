/**
 * A session's messages in flight: by packet id, and in the order they were sent (the order
 * they are resent in on reconnect [MQTT-4.4.0-1]).
 *
 * It replaces a Map<number, entry>. A Map that takes and gives back an entry per message
 * keeps rebuilding its table (deleted entries are only reclaimed by a rehash into a new
 * one): about 100 bytes allocated per QoS 1 message, a tenth of what the broker allocates
 * per message in fan-in. Here nothing is allocated while the window does not grow:
 *
 * - `slots` holds an entry at `packetId & mask`. Packet ids are handed out by `allocate()`,
 *   which skips an id whose slot is taken, so a slot never holds two entries. The table is
 *   kept at least twice the size of the window (up to 65,536 slots: one per id), so ids
 *   acknowledged in order never collide and a skip is rare.
 * - `ring` holds the entries in send order at `order & ringMask`; an entry acknowledged out of
 *   order leaves a hole (null) that the head skips once it gets there. A ring full of holes
 *   is laid out again.
 * - Neither shrinks while entries are in flight. When the window empties, tables more than
 *   eight times what its largest size since the last time it was empty needs (and above
 *   SHRINK_ABOVE slots) are made that size: a burst's tables go once the bursts are over, and
 *   a window that fills and empties at every turn (a subscriber acknowledging each batch)
 *   keeps its tables instead of regrowing them every time.
 *
 * Entries carry their `order` (their place in the ring), set here.
 */

/** What the window needs of an entry. */
export interface WindowEntry {
  packetId: number;
  /** Place in send order; set by InflightWindow.add(). */
  order: number;
}

/** The read-only view of the window that code outside the session gets. */
export interface InflightView<E> {
  readonly size: number;
  get(packetId: number): E | undefined;
  has(packetId: number): boolean;
  /** Packet ids in send order. */
  keys(): IterableIterator<number>;
  /** Entries in send order. */
  values(): IterableIterator<E>;
}

const MIN_SIZE = 16;
const SHRINK_ABOVE = 1024;
const MAX_SLOTS = 65536;
const MAX_PACKET_ID = 65535;

export class InflightWindow<E extends WindowEntry> implements InflightView<E> {
  private slots: Array<E | undefined> = new Array<E | undefined>(MIN_SIZE).fill(undefined);
  private ring: Array<E | null> = new Array<E | null>(MIN_SIZE).fill(null);
  /** Send order of the oldest ring position in use, and of the next entry. */
  private head = 0;
  private tail = 0;
  private nextId = 1;
  /** Largest size since the window was last empty. */
  private peak = 0;
  size = 0;

  get(packetId: number): E | undefined {
    const e = this.slots[packetId & (this.slots.length - 1)];
    return e !== undefined && e.packetId === packetId ? e : undefined;
  }

  has(packetId: number): boolean {
    return this.get(packetId) !== undefined;
  }

  /**
   * A packet id no entry has, whose slot is free: the next one after the last handed out.
   * The caller adds an entry with it before asking again. Needs fewer than 65,535 entries.
   */
  allocate(): number {
    if (this.size * 2 >= this.slots.length && this.slots.length < MAX_SLOTS) this.resizeSlots(this.slots.length * 2);
    const mask = this.slots.length - 1;
    for (;;) {
      const id = this.nextId;
      this.nextId = id === MAX_PACKET_ID ? 1 : id + 1;
      if (this.slots[id & mask] === undefined) return id;
    }
  }

  /** Adds an entry as the newest; one already there with its packet id is replaced. */
  add(e: E): void {
    const old = this.get(e.packetId);
    if (old !== undefined) this.delete(old.packetId);
    while (this.slots[e.packetId & (this.slots.length - 1)] !== undefined) this.resizeSlots(this.slots.length * 2);
    this.slots[e.packetId & (this.slots.length - 1)] = e;
    if (this.tail - this.head === this.ring.length) this.relayRing();
    e.order = this.tail;
    this.ring[this.tail & (this.ring.length - 1)] = e;
    this.tail++;
    if (++this.size > this.peak) this.peak = this.size;
  }

  /** Removes the entry of `packetId`; false when there is none. */
  delete(packetId: number): boolean {
    const e = this.get(packetId);
    if (e === undefined) return false;
    this.slots[packetId & (this.slots.length - 1)] = undefined;
    const ringMask = this.ring.length - 1;
    this.ring[e.order & ringMask] = null;
    this.size--;
    while (this.head < this.tail && this.ring[this.head & ringMask] === null) this.head++;
    if (this.size === 0) {
      let want = MIN_SIZE;
      while (want < this.peak * 2) want *= 2;
      if (this.slots.length > SHRINK_ABOVE && this.slots.length >= want * 8) {
        this.slots = new Array<E | undefined>(want).fill(undefined);
        this.ring = new Array<E | null>(want).fill(null);
        this.head = this.tail = 0;
      }
      this.peak = 0;
    }
    return true;
  }

  /** Entries in send order. Entries may be deleted while iterating; none may be added. */
  *values(): IterableIterator<E> {
    for (let order = this.head; order < this.tail; order++) {
      const e = this.ring[order & (this.ring.length - 1)];
      if (e !== null) yield e;
    }
  }

  *keys(): IterableIterator<number> {
    for (const e of this.values()) yield e.packetId;
  }

  /** A table of `size` slots (a power of two), the entries moved to it. */
  private resizeSlots(size: number): void {
    const slots = new Array<E | undefined>(size).fill(undefined);
    const mask = size - 1;
    for (const e of this.slots) if (e !== undefined) slots[e.packetId & mask] = e;
    this.slots = slots;
  }

  /** The ring is full (of entries and holes): lays the entries out again, without holes, with room to spare. */
  private relayRing(): void {
    let size = MIN_SIZE;
    while (size < this.size * 2) size *= 2;
    const ring = new Array<E | null>(size).fill(null);
    let order = 0;
    for (const e of this.values()) {
      e.order = order;
      ring[order++] = e;
    }
    this.ring = ring;
    this.head = 0;
    this.tail = order;
  }
}

/** The view of a session that has nothing in flight. */
export const EMPTY_INFLIGHT: InflightView<never> = new InflightWindow<never>();
