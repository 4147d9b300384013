/**
 * The topic room's facade (design.md, layer 1): pure functions and data structures for
 * topic names and filters. Wire-level syntax (`topicNameError`, `topicFilterError`,
 * `hasWildcard`) belongs to the codec and is re-exported here so that higher rooms need one
 * import for everything about topics.
 */

export { topicNameError, topicFilterError, hasWildcard } from '../codec/topic-syntax.js';
export { TopicTrie } from './trie.js';
export { matchTopic } from './match.js';
export {
  parseSubscription,
  parseDelayed,
  topicLevelCount,
  exceedsLevels,
  SHARE_PREFIX,
  QUEUE_PREFIX,
  EXCLUSIVE_PREFIX,
  DELAYED_PREFIX,
  QUEUE_GROUP,
  MAX_DELAY_SECONDS,
} from './filters.js';
export type { ParsedSubscription, ParsedDelayed } from './filters.js';
