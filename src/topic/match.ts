/**
 * The plain matcher: does one topic filter match one topic name?
 *
 * Deliberately written without anything in common with `trie.ts` (it splits both strings
 * into arrays and compares level by level), because the property tests use it as the oracle
 * the trie is checked against. Callers: authorization rules (one filter against one topic),
 * retained-message lookup over a handful of filters, and tests. For many filters against one
 * topic, use `TopicTrie.match`.
 */

/**
 * True when `filter` matches the topic name `topic` (MQTT 5 section 4.7).
 *
 * Both arguments are expected to be well formed (see `topicFilterError` and
 * `topicNameError` in `src/codec/topic-syntax.ts`); on a malformed filter the answer is
 * unspecified but the function still returns a boolean. Allocates the two level arrays.
 */
export function matchTopic(filter: string, topic: string): boolean {
  // [MQTT-4.7.2-1] Filters starting with a wildcard do not match topic names starting
  // with `$` (`#` does not see `$SYS/...`; `$SYS/#` does).
  const first = filter.charAt(0);
  if (topic.startsWith('$') && (first === '+' || first === '#')) return false;

  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    // `#` matches the parent level and any number of child levels, so it matches whatever
    // is left, including nothing: `sport/#` matches `sport` (MQTT 5 section 4.7.1.2).
    if (level === '#') return true;
    if (i >= t.length) return false;
    // `+` matches exactly one level, which may be empty (`+/a` matches `/a`).
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}
