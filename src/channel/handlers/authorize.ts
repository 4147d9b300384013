/**
 * Authorization decisions that arrive later (an http source asked on a cache miss) without
 * reordering a client's packets.
 *
 * Contract: `holdFor` is called by a handler whose decision is a Promise. From then until the
 * decision settles, the client's socket is not read and every PUBLISH, SUBSCRIBE and
 * UNSUBSCRIBE that was already decoded is queued (`queueIfHeld`, first thing in those
 * handlers), and so are DISCONNECT, AUTH, any other packet that ends the connection, a decode
 * error and the socket closing (channel.ts): MQTT has the server process a client's packets
 * in order, so a PUBLISH followed at once by DISCONNECT is routed (if allowed) before the
 * DISCONNECT takes effect. When the decision settles, the handler's continuation runs, then
 * the queued items in arrival order, each of which may hold again (the rest stays queued
 * behind it). Acks and PINGREQ are not held: they do not depend on what was authorized.
 * Only a close from the server side (takeover, kick, keepalive, shutdown) drops what is held.
 *
 * Cost when nothing is held anywhere: one integer test per PUBLISH/SUBSCRIBE.
 */
import type { Channel } from '../channel.js';

const held = new WeakMap<Channel, Array<() => void>>();
/** Channels holding right now (skips the WeakMap lookup in the common case). */
let holding = 0;

/** Queues `run` when this client's input is held; true when it was queued. */
export function queueIfHeld(ch: Channel, run: () => void): boolean {
  if (holding === 0) return false;
  const q = held.get(ch);
  if (q === undefined) return false;
  q.push(run);
  return true;
}

/** True when this client's input is held (the caller then builds its continuation and queues it). */
export function isHeld(ch: Channel): boolean {
  return holding !== 0 && held.has(ch);
}

/**
 * Holds the client's input until `decision` settles, then runs `then` with it (`failed` when it
 * rejects) and the packets queued meanwhile.
 */
export function holdFor<T>(ch: Channel, decision: Promise<T>, failed: T, then: (d: T) => void): void {
  held.set(ch, []);
  holding++;
  ch.io.pauseReading();
  decision.then((d) => d, () => failed).then((d) => {
    const queued = held.get(ch) ?? [];
    held.delete(ch);
    holding--;
    if (ch.state !== 'connected') return; // closed meanwhile: nothing more to do for it
    then(d);
    replay(ch, queued);
  }, () => {});
}

function replay(ch: Channel, queued: Array<() => void>): void {
  for (let i = 0; i < queued.length; i++) {
    if (ch.state !== 'connected') return;
    const again = held.get(ch);
    if (again !== undefined) {
      // A replayed packet is waiting for its own decision: the rest stays queued behind it.
      again.push(...queued.slice(i));
      return;
    }
    queued[i]!();
  }
  if (ch.state === 'connected' && !held.has(ch)) ch.io.resumeReading();
}
