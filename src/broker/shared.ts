/**
 * Shared-subscription strategies (`mqtt.shared_subscription_strategy`, EMQX's names): which
 * member of a `$share/<group>/<filter>` group receives a message. A member whose connection is
 * gone but whose session lives is still picked: its share waits in its queue (EMQX does the
 * same; the FAQ explains why messages "disappear" into offline members).
 */
import type { SharedSubscriptionStrategy } from '../config/index.js';
import type { SharedGroup } from '../router/index.js';
import type { Message, SubOptions, Subscriber } from './types.js';

/** FNV-1a over a string: cheap and stable across restarts (hash_clientid / hash_topic). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function pickMember(
  group: SharedGroup<Subscriber, SubOptions>,
  msg: Message,
  strategy: SharedSubscriptionStrategy,
): Subscriber | undefined {
  const members = group.members;
  const n = members.length;
  if (n === 0) return undefined;
  if (n === 1) return members[0];
  switch (strategy) {
    case 'random':
      return members[Math.floor(Math.random() * n)];
    case 'round_robin':
    case 'round_robin_per_group': {
      // One node: the group's cursor is the per-group cursor.
      const m = members[group.cursor % n];
      group.cursor = (group.cursor + 1) % n;
      return m;
    }
    case 'sticky': {
      // Stay with the chosen member while it is connected; pick again when it goes away.
      if (group.sticky !== null && group.sticky.online) return group.sticky;
      const online = members.filter((m) => m.online);
      const pool = online.length > 0 ? online : members;
      group.sticky = pool[Math.floor(Math.random() * pool.length)]!;
      return group.sticky;
    }
    case 'hash_clientid':
      return members[fnv1a(msg.from) % n];
    case 'hash_topic':
      return members[fnv1a(msg.topic) % n];
  }
}
