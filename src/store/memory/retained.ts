/**
 * In-memory retained messages: a tree with one node per topic level, so a wildcard filter
 * visits only the branches it can match instead of scanning every retained topic.
 */
import type { RetainedStore, StoredMessage } from '../types.js';

class LevelNode {
  children: Map<string, LevelNode> | null = null;
  message: StoredMessage | null = null;
}

export class MemoryRetainedStore implements RetainedStore {
  private readonly root = new LevelNode();
  private count = 0;

  get size(): number {
    return this.count;
  }

  set(msg: StoredMessage): void {
    if (msg.payload.length === 0) {
      this.delete(msg.topic);
      return;
    }
    let node = this.root;
    for (const level of msg.topic.split('/')) {
      node.children ??= new Map();
      let next = node.children.get(level);
      if (next === undefined) {
        next = new LevelNode();
        node.children.set(level, next);
      }
      node = next;
    }
    if (node.message === null) this.count++;
    // A retained message can live for days: keep our own copy of the payload instead of a
    // view that would pin the whole socket chunk it arrived in.
    // A Message's encode caches are dropped with the view: they may be views of that chunk too.
    node.message = { ...msg, payload: Buffer.from(msg.payload), wire: undefined, wireForm: undefined, wireMore: undefined, inbound: -1 } as StoredMessage;
  }

  delete(topic: string): boolean {
    const path: LevelNode[] = [this.root];
    const levels = topic.split('/');
    let node: LevelNode | undefined = this.root;
    for (const level of levels) {
      node = node.children?.get(level);
      if (node === undefined) return false;
      path.push(node);
    }
    if (node.message === null) return false;
    node.message = null;
    this.count--;
    // Prune empty branches bottom-up.
    for (let i = levels.length; i > 0; i--) {
      const n = path[i]!;
      if (n.message !== null || (n.children !== null && n.children.size > 0)) break;
      path[i - 1]!.children!.delete(levels[i - 1]!);
    }
    return true;
  }

  get(topic: string): StoredMessage | undefined {
    let node: LevelNode | undefined = this.root;
    for (const level of topic.split('/')) {
      node = node.children?.get(level);
      if (node === undefined) return undefined;
    }
    return node.message ?? undefined;
  }

  match(filter: string, now: number): StoredMessage[] {
    const out: StoredMessage[] = [];
    this.walk(this.root, filter.split('/'), 0, now, out, true);
    return out;
  }

  private walk(node: LevelNode, levels: string[], i: number, now: number, out: StoredMessage[], first: boolean): void {
    if (i === levels.length) {
      if (node.message !== null && !expired(node.message, now)) out.push(node.message);
      return;
    }
    const level = levels[i]!;
    if (level === '#') {
      // '#' also matches the parent level itself [MQTT-4.7.1-2].
      if (node.message !== null && !first && !expired(node.message, now)) out.push(node.message);
      this.collect(node, now, out, first);
      return;
    }
    if (node.children === null) return;
    if (level === '+') {
      for (const [name, child] of node.children) {
        // [MQTT-4.7.2-1] a leading wildcard does not match topics starting with '$'.
        if (first && name.startsWith('$')) continue;
        this.walk(child, levels, i + 1, now, out, false);
      }
      return;
    }
    const child = node.children.get(level);
    if (child !== undefined) this.walk(child, levels, i + 1, now, out, false);
  }

  private collect(node: LevelNode, now: number, out: StoredMessage[], first: boolean): void {
    if (node.children === null) return;
    for (const [name, child] of node.children) {
      if (first && name.startsWith('$')) continue;
      if (child.message !== null && !expired(child.message, now)) out.push(child.message);
      this.collect(child, now, out, false);
    }
  }

  list(): StoredMessage[] {
    const out: StoredMessage[] = [];
    const visit = (node: LevelNode): void => {
      if (node.message !== null) out.push(node.message);
      if (node.children !== null) for (const child of node.children.values()) visit(child);
    };
    visit(this.root);
    return out.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
  }

  sweep(now: number): number {
    let dropped = 0;
    for (const msg of this.list()) {
      if (expired(msg, now) && this.delete(msg.topic)) dropped++;
    }
    return dropped;
  }
}

function expired(msg: StoredMessage, now: number): boolean {
  return msg.expiresAt !== 0 && msg.expiresAt <= now;
}
