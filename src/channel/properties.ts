/** MQTT 5 property handling shared by the channel and its handlers. */
import type { Properties } from '../codec/index.js';

/** The properties a message carries to subscribers unaltered [MQTT-3.3.2-4, -17, -20]. */
export function forwardable(p: Properties | undefined): Properties | undefined {
  if (p === undefined) return undefined;
  const out: Properties = {};
  let any = false;
  if (p.payloadFormatIndicator !== undefined) { out.payloadFormatIndicator = p.payloadFormatIndicator; any = true; }
  if (p.contentType !== undefined) { out.contentType = p.contentType; any = true; }
  if (p.responseTopic !== undefined) { out.responseTopic = p.responseTopic; any = true; }
  if (p.correlationData !== undefined) { out.correlationData = p.correlationData; any = true; }
  if (p.userProperties !== undefined) { out.userProperties = p.userProperties; any = true; }
  return any ? out : undefined;
}
