/**
 * Mountpoints (`listeners.<type>.<name>.mountpoint`, EMQX's option): a topic prefix that gives
 * a listener's clients their own part of the topic tree. The channel adds it to every topic a
 * mountpointed client publishes (its will, the inner topic of `$delayed/<s>/<topic>`) and to
 * every filter it subscribes or unsubscribes (inside `$share/<group>/`, `$queue/`,
 * `$exclusive/`, never to the group), and takes it off the topics it is sent. Authorization
 * and the `$SYS` rule look at the topic as the client wrote it, as EMQX does.
 *
 * Called only for clients that have a mountpoint: a client without one costs a null check.
 */
import { DELAYED_PREFIX, EXCLUSIVE_PREFIX, QUEUE_PREFIX, SHARE_PREFIX, parseDelayed, parseSubscription } from '../topic/index.js';

/**
 * The mountpoint of one client: `${clientid}` and `${username}` filled in (a client without a
 * username keeps `${username}` as written, as EMQX does). Null when a value would put a `+` or
 * `#` into it: the prefix would turn the client's topics into filters and its filters into
 * wider ones, reaching beyond its own part of the tree.
 */
export function resolveMountpoint(template: string, clientId: string, username: string | undefined): string | null {
  if (!template.includes('${')) return template;
  const out = template.replaceAll('${clientid}', clientId).replaceAll('${username}', username ?? '${username}');
  return /[+#]/.test(out) ? null : out;
}

/** A PUBLISH (or will) topic as routed: `mp + topic`, or `$delayed/<s>/` + mp + topic. */
export function mountTopic(mp: string, topic: string): string {
  if (topic.startsWith(DELAYED_PREFIX)) {
    const delayed = parseDelayed(topic);
    // An invalid $delayed topic stays as it is, so the broker refuses it as one.
    if (delayed === null || 'invalid' in delayed) return topic;
    const at = topic.length - delayed.topic.length;
    return topic.slice(0, at) + mp + delayed.topic;
  }
  return mp + topic;
}

/**
 * A SUBSCRIBE / UNSUBSCRIBE filter as routed. The prefix goes on the filter part of
 * `$share/<group>/<filter>`, `$queue/<filter>` and `$exclusive/<filter>`. An invalid filter
 * is returned as it came, so that the broker refuses it (an empty filter would become valid).
 */
export function mountFilter(mp: string, raw: string): string {
  const parsed = parseSubscription(raw);
  if (parsed.kind === 'invalid') return raw;
  const at = raw.length - parsed.filter.length;
  if (at > 0 && (raw.startsWith(SHARE_PREFIX) || raw.startsWith(QUEUE_PREFIX) || raw.startsWith(EXCLUSIVE_PREFIX))) {
    return raw.slice(0, at) + mp + parsed.filter;
  }
  return mp + raw;
}

/**
 * The topic a mountpointed client is sent, or null when the message lies outside its
 * mountpoint: `a/#` also matches the parent `a`, and a topic equal to the mountpoint would
 * leave an empty topic name, which MQTT forbids [MQTT-4.7.3-1].
 */
export function unmountTopic(mp: string, topic: string): string | null {
  return topic.length > mp.length && topic.startsWith(mp) ? topic.slice(mp.length) : null;
}
