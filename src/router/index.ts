/**
 * The route table: topic filter -> destinations, on the topic trie.
 *
 * A destination is either a direct subscriber (with its subscription options) or a shared
 * group (`$share/<group>/<filter>`) whose members the broker picks from per message. The
 * router knows nothing of sessions: it is generic over the subscriber type `S` and the option
 * type `O`, so it is tested alone and the broker supplies both.
 *
 * Hot path: `match(topic)` is called once per PUBLISH. Results are cached per topic name; any
 * subscribe or unsubscribe bumps a generation number that empties the cache. The cache is
 * bounded (`matchCacheSize`); when full it is cleared rather than evicted piecemeal, which
 * keeps the common case (a working set of topics smaller than the cache) allocation-free.
 */
import { TopicTrie } from '../topic/index.js';

export class SharedGroup<S, O> {
  readonly members: S[] = [];
  readonly options = new Map<S, O>();
  /** Strategy state kept by the broker (round-robin cursor, sticky pick). */
  cursor = 0;
  sticky: S | null = null;
  constructor(
    readonly name: string,
    readonly filter: string,
  ) {}
}

export class RouteEntry<S, O> {
  readonly direct = new Map<S, O>();
  groups: Map<string, SharedGroup<S, O>> | null = null;
  constructor(readonly filter: string) {}
  get empty(): boolean {
    return this.direct.size === 0 && (this.groups === null || this.groups.size === 0);
  }
}

export class Router<S, O> {
  private readonly trie = new TopicTrie<RouteEntry<S, O>>();
  private readonly cache = new Map<string, RouteEntry<S, O>[]>();
  private readonly scratch: RouteEntry<S, O>[] = [];
  /** Filters that begin with `$` (the only ones that can match a `$SYS/...` topic). */
  private dollarFilters = 0;

  constructor(private readonly matchCacheSize = 65536) {}

  /** Adds or replaces a direct subscription. Returns true when it is new. */
  subscribe(filter: string, subscriber: S, options: O): boolean {
    const entry = this.entry(filter);
    const isNew = !entry.direct.has(subscriber);
    entry.direct.set(subscriber, options);
    this.cache.clear();
    return isNew;
  }

  unsubscribe(filter: string, subscriber: S): boolean {
    const entry = this.trie.get(filter);
    if (entry === undefined || !entry.direct.delete(subscriber)) return false;
    if (entry.empty) this.drop(filter);
    this.cache.clear();
    return true;
  }

  subscribeShared(group: string, filter: string, subscriber: S, options: O): boolean {
    const entry = this.entry(filter);
    entry.groups ??= new Map();
    let g = entry.groups.get(group);
    if (g === undefined) {
      g = new SharedGroup<S, O>(group, filter);
      entry.groups.set(group, g);
    }
    const isNew = !g.options.has(subscriber);
    if (isNew) g.members.push(subscriber);
    g.options.set(subscriber, options);
    this.cache.clear();
    return isNew;
  }

  unsubscribeShared(group: string, filter: string, subscriber: S): boolean {
    const entry = this.trie.get(filter);
    const g = entry?.groups?.get(group);
    if (entry === undefined || g === undefined || !g.options.delete(subscriber)) return false;
    g.members.splice(g.members.indexOf(subscriber), 1);
    if (g.sticky === subscriber) g.sticky = null;
    if (g.members.length === 0) entry.groups!.delete(group);
    if (entry.empty) this.drop(filter);
    this.cache.clear();
    return true;
  }

  /**
   * Route entries whose filter matches `topic`. The returned array is shared (cached): the
   * caller must not keep or modify it beyond the current call.
   */
  match(topic: string): readonly RouteEntry<S, O>[] {
    const hit = this.cache.get(topic);
    if (hit !== undefined) return hit;
    const scratch = this.scratch;
    scratch.length = 0;
    this.trie.match(topic, scratch);
    const result = scratch.slice();
    if (this.cache.size >= this.matchCacheSize) this.cache.clear();
    this.cache.set(topic, result);
    return result;
  }

  /**
   * Whether any filter could match a topic that begins with `$` ([MQTT-4.7.2-1]: a filter that
   * starts with a wildcard never does). Lets `$SYS` event producers skip building messages that
   * no subscriber could receive.
   */
  get hasDollarFilters(): boolean {
    return this.dollarFilters > 0;
  }

  /** Number of distinct filters with at least one destination. */
  get filterCount(): number {
    return this.trie.size;
  }

  /** All route entries (management API, $SYS statistics). */
  entries(): IterableIterator<[string, RouteEntry<S, O>]> {
    return this.trie.entries();
  }

  private entry(filter: string): RouteEntry<S, O> {
    let entry = this.trie.get(filter);
    if (entry === undefined) {
      entry = new RouteEntry<S, O>(filter);
      this.trie.set(filter, entry);
      if (filter.charCodeAt(0) === 0x24 /* $ */) this.dollarFilters++;
    }
    return entry;
  }

  private drop(filter: string): void {
    this.trie.delete(filter);
    if (filter.charCodeAt(0) === 0x24 /* $ */) this.dollarFilters--;
  }
}
