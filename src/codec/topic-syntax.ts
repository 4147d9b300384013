/**
 * The wire rules for topic names and topic filters (MQTT 5 section 4.7, 3.1.1 section 4.7).
 * Broker policy (maximum levels, `$share` group rules, wildcard subscriptions switched off)
 * lives in `src/topic`; this file only answers "is this string well formed".
 *
 * Both functions return null when the string is valid, or a short reason.
 * Hot path: called once per PUBLISH topic; a single charCode scan, no allocation on success.
 */

const PLUS = 0x2b;
const HASH = 0x23;
const SLASH = 0x2f;

export function topicNameError(topic: string): string | null {
  // [MQTT-4.7.3-1] Topic Names are at least one character long (MQTT 5 may send an empty
  // topic together with a Topic Alias; the decoder allows that case itself).
  if (topic.length === 0) return 'empty topic name';
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    // [MQTT-3.3.2-2] The Topic Name in a PUBLISH MUST NOT contain wildcard characters.
    if (c === PLUS || c === HASH) return 'wildcard character in topic name';
  }
  return null;
}

export function topicFilterError(filter: string): string | null {
  // [MQTT-4.7.3-1] Topic Filters are at least one character long.
  if (filter.length === 0) return 'empty topic filter';
  let levelStart = 0;
  const n = filter.length;
  for (let i = 0; i < n; i++) {
    const c = filter.charCodeAt(i);
    if (c === SLASH) {
      levelStart = i + 1;
    } else if (c === PLUS) {
      // [MQTT-4.7.1-2] '+' occupies an entire level.
      if (i !== levelStart || (i + 1 < n && filter.charCodeAt(i + 1) !== SLASH)) {
        return "'+' must occupy a whole topic level";
      }
    } else if (c === HASH) {
      // [MQTT-4.7.1-1] '#' occupies a whole level and is the last character.
      if (i !== levelStart) return "'#' must occupy a whole topic level";
      if (i !== n - 1) return "'#' must be the last character of the filter";
    }
  }
  return null;
}

/** True when the filter holds `+` or `#` (cheap check for the router and for policy). */
export function hasWildcard(filter: string): boolean {
  for (let i = 0; i < filter.length; i++) {
    const c = filter.charCodeAt(i);
    if (c === PLUS || c === HASH) return true;
  }
  return false;
}
