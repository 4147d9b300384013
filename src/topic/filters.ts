/**
 * Broker-level topic rules on top of the wire syntax of `src/codec/topic-syntax.ts`:
 * the special subscription prefixes (`$share/`, `$queue/`, `$exclusive/`), EMQX's delayed
 * publish prefix (`$delayed/`), and level counting for `mqtt.max_topic_levels`.
 *
 * Every function here returns a tagged result and never throws: the callers (the SUBSCRIBE
 * and PUBLISH handlers of the channel) turn a bad result into a reason code, per protocol
 * version, in one place.
 */

import { topicFilterError, topicNameError } from '../codec/topic-syntax.js';

export const SHARE_PREFIX = '$share/';
export const QUEUE_PREFIX = '$queue/';
export const EXCLUSIVE_PREFIX = '$exclusive/';
export const DELAYED_PREFIX = '$delayed/';
/** The share group that `$queue/<filter>` stands for (EMQX compatibility). */
export const QUEUE_GROUP = '$queue';
/** Longest delay EMQX accepts: 2^32 milliseconds, rounded down to whole seconds. */
export const MAX_DELAY_SECONDS = 4294967;

/** What a SUBSCRIBE topic filter asks for once its prefix is understood. */
export type ParsedSubscription =
  | { kind: 'normal'; filter: string }
  | { kind: 'shared'; group: string; filter: string }
  | { kind: 'exclusive'; filter: string }
  | { kind: 'invalid'; reason: string };

/** A `$delayed/<seconds>/<topic>` PUBLISH topic, taken apart. */
export type ParsedDelayed = { delaySeconds: number; topic: string } | { invalid: string };

/**
 * Reads the prefix of a subscription's topic filter:
 *   - `$share/<group>/<filter>`: a shared subscription (MQTT 5 section 4.8.2; also accepted
 *     from 3.1.1 clients, as EMQX and Mosquitto do);
 *   - `$queue/<filter>`: a shared subscription in group `$queue` (EMQX's older form);
 *   - `$exclusive/<filter>`: an exclusive subscription (EMQX: one subscriber per filter);
 *   - anything else: a normal filter.
 * The filter part must be a valid topic filter, and may not carry a second special prefix
 * (`$share/g/$queue/t` would be ambiguous; EMQX rejects it too).
 * Called once per filter of a SUBSCRIBE; allocates only the returned object and substrings.
 */
export function parseSubscription(raw: string): ParsedSubscription {
  if (raw.startsWith(SHARE_PREFIX)) {
    const slash = raw.indexOf('/', SHARE_PREFIX.length);
    const group = raw.slice(SHARE_PREFIX.length, slash === -1 ? raw.length : slash);
    // [MQTT-4.8.2-1] The ShareName is at least one character long.
    if (group.length === 0) return invalid('empty share group name');
    // [MQTT-4.8.2-2] The ShareName contains no "/", "+" or "#" ("/" ends it here) and is
    // followed by "/" and a Topic Filter.
    if (group.includes('+') || group.includes('#')) {
      return invalid("share group name must not contain '+' or '#'");
    }
    if (slash === -1) return invalid('shared subscription without a topic filter');
    const filter = raw.slice(slash + 1);
    const err = innerFilterError(filter);
    return err === null ? { kind: 'shared', group, filter } : invalid(err);
  }
  if (raw.startsWith(QUEUE_PREFIX)) {
    const filter = raw.slice(QUEUE_PREFIX.length);
    const err = innerFilterError(filter);
    return err === null ? { kind: 'shared', group: QUEUE_GROUP, filter } : invalid(err);
  }
  if (raw.startsWith(EXCLUSIVE_PREFIX)) {
    const filter = raw.slice(EXCLUSIVE_PREFIX.length);
    const err = innerFilterError(filter);
    return err === null ? { kind: 'exclusive', filter } : invalid(err);
  }
  const err = topicFilterError(raw);
  return err === null ? { kind: 'normal', filter: raw } : invalid(err);
}

/**
 * Reads EMQX's delayed-publish topic `$delayed/<seconds>/<topic>`.
 * Returns null when `topic` does not start with `$delayed/` (an ordinary PUBLISH), the
 * delay and the real topic when it is well formed, or `{ invalid }` otherwise. `<seconds>`
 * is a decimal integer from 0 to 4294967 (digits only: no sign, no exponent, no spaces);
 * `<topic>` must be a valid topic name.
 * Called once per PUBLISH whose topic starts with `$`; allocates only on a match.
 */
export function parseDelayed(topic: string): ParsedDelayed | null {
  if (!topic.startsWith(DELAYED_PREFIX)) return null;
  const start = DELAYED_PREFIX.length;
  const slash = topic.indexOf('/', start);
  const end = slash === -1 ? topic.length : slash;
  if (end === start) return { invalid: 'missing delay interval' };
  let seconds = 0;
  for (let i = start; i < end; i++) {
    const d = topic.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return { invalid: 'delay interval is not a non-negative integer' };
    seconds = seconds * 10 + d;
    // Checked per digit so that a long run of digits cannot lose precision.
    if (seconds > MAX_DELAY_SECONDS) {
      return { invalid: `delay interval exceeds ${MAX_DELAY_SECONDS} seconds` };
    }
  }
  if (slash === -1) return { invalid: 'delayed publish without a topic' };
  const target = topic.slice(slash + 1);
  const err = topicNameError(target);
  if (err !== null) return { invalid: err };
  return { delaySeconds: seconds, topic: target };
}

/**
 * Number of levels in a topic name or filter: one more than the number of `/`
 * (`a//b` has 3 levels, `/` has 2). No allocation.
 */
export function topicLevelCount(s: string): number {
  let levels = 1;
  let i = s.indexOf('/');
  while (i !== -1) {
    levels++;
    i = s.indexOf('/', i + 1);
  }
  return levels;
}

/**
 * True when `s` has more than `max` levels (`mqtt.max_topic_levels`). Stops scanning as
 * soon as the answer is known, so a hostile 64 KiB topic of slashes costs `max` steps.
 * Pass `Infinity` for "no limit". No allocation.
 */
export function exceedsLevels(s: string, max: number): boolean {
  if (max < 1) return true;
  let levels = 1;
  let i = s.indexOf('/');
  while (i !== -1) {
    if (++levels > max) return true;
    i = s.indexOf('/', i + 1);
  }
  return false;
}

function invalid(reason: string): ParsedSubscription {
  return { kind: 'invalid', reason };
}

/** Validity of the filter after a special prefix: non-empty, well formed, no second prefix. */
function innerFilterError(filter: string): string | null {
  // [MQTT-4.8.2-2] The "/" after the ShareName is followed by a Topic Filter; the EMQX
  // prefixes follow the same rule.
  if (filter.length === 0) return 'missing topic filter after the prefix';
  if (
    filter.startsWith(SHARE_PREFIX) ||
    filter.startsWith(QUEUE_PREFIX) ||
    filter.startsWith(EXCLUSIVE_PREFIX)
  ) {
    return 'special prefix nested inside another one';
  }
  return topicFilterError(filter);
}
